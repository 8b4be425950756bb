//! Scope merge rules. (Implementation in progress.)
