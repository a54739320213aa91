//! The compiled form of one configuration version (filled in by the foundation work).
