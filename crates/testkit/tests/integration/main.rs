//! Integration tests of testkit itself against the real tools: every registry kind starts and
//! stops, and every image kind pushed to it is then seen by skopeo exactly as testkit reports it.
//! The other crates' tests build on these guarantees.

mod images;
mod registries;
