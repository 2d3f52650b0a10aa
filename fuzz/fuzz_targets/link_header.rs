//! The `Link: </v2/x/tags/list?last=a&n=100>; rel="next"` header of a paged tag list or
//! catalog.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &str| {
    if let Some(target) = registry::fuzzing::next_link(header) {
        // The next page is requested at this address: it must come from the header.
        assert!(
            header.contains(target.as_str()),
            "{target:?} not in {header:?}"
        );
    }
});
