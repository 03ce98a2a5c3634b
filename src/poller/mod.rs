//! Optional Mist API poller: live device, radio and client gauges from the WebSocket stream
//! and org figures from REST.

pub mod config;
