//! The terminal dashboard (not built yet).
