//! Typed Open_vSwitch tables.
