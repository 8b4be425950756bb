//! Placeholder until the plugin interfaces land (see docs/architecture.md).
