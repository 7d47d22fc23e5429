//! Receiving video: [`FrameBuffer`] puts RTP packets back in order, groups them into frames,
//! hands out frames once they are complete and decodable, asks for retransmission of
//! missing packets (NACK, retries paced by the round-trip time) and for a keyframe (PLI)
//! when a loss cannot be repaired. A loss at the tail of a frame that nothing follows (the
//! marker packet lost, then the sender pauses) is found by a timer (`tail_wait`), not by a
//! later packet; see [`FrameBuffer`].
//!
//! A receive path looks like this (all sans-IO, driven by `now`):
//!
//! ```text
//! RTP packet ─► payload::h264::inspect (frame start? keyframe?) ─► FrameBuffer::insert
//! FrameBuffer::pop_frame ─► H264Depacketizer::depacketize_ordered ─► H264Decoder::decode
//! FrameBuffer::poll_feedback(now) ─► RTCP generic NACK / PLI to the sender
//! FrameBuffer::poll_timeout() ─► when to call poll_feedback again
//! ```

mod frame_buffer;

pub use frame_buffer::{
    Feedback, FrameBuffer, FrameBufferConfig, FrameBufferStats, FrameInfo, InsertError, VideoPacket,
};
