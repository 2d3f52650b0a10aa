//! cfg.yaml, the configuration file a user edits by hand (YAML, the original's keys and ours).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    image_transmit::fuzzing::cfg_yaml(text);
});
