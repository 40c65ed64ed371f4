//! session-bridge
