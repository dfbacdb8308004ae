//! The stack's settings (filled in with the stack).
/// Placeholder.
#[derive(Clone, Debug)]
pub struct StackConfig;
