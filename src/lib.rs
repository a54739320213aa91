//! The edgegate Worker (glue).
