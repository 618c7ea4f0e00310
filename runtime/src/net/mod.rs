//! Networking the runtime does itself: a minimal rtnetlink client
//! (`netlink`) and `linux.netDevices`, host links moved into the
//! container's network namespace (`netdev`). A bundle's network is
//! otherwise what its config.json says (a namespace to make or join).

pub mod netdev;
pub mod netlink;
