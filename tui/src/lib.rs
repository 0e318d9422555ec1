//! tally's terminal dashboard: state and input ([`app`]), widgets ([`ui`]) and colours
//! ([`theme`]). The binary (`tally`) runs it against a live collector.

pub mod app;
pub mod theme;
pub mod ui;
