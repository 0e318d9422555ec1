//! The desktop dashboard (not built yet).
