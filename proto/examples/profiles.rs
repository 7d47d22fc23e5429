//! Lists the SRTP profiles supernode speaks, as signaling names them.
fn main() {
    for p in supernode_proto::SrtpProfile::ALL {
        println!(
            "{:<26} key {} B, salt {} B, +{} B per RTP packet",
            p.name(),
            p.key_len(),
            p.salt_len(),
            p.rtp_overhead()
        );
    }
}
