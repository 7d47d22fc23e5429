//! Wire formats: RTP (RFC 3550, 8285), RTCP (RFC 3550, 4585, 5104, transport-cc), STUN
//! (RFC 8489) and RFC 7983 demultiplexing. Zero-copy: parsers borrow the datagram.
