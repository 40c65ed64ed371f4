//! See the module map in `tokens`.
