//! The config JSON Schema. (Implementation in progress.)
