//! (being written)
/// Placeholder.
pub struct Stack;
