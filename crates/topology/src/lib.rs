//! p2plab topology model (work in progress; see issue 2).
