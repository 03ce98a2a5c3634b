//! Typed per-topic Mist events. (Filled in by the signals work.)
