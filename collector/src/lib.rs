//! Listeners, hub clients and decoders that feed a `tally_core::Engine` (not built yet).
