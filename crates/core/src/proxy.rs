//! Pure proxy header logic.
