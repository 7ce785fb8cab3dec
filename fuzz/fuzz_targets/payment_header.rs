//! Both payment header decoders (`PAYMENT-SIGNATURE` v2, `X-PAYMENT` v1 or v2) on any value:
//! never panic, and whatever decodes re-encodes to a header that decodes to the same payment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obol::x402::codec::{PAYMENT_SIGNATURE, X_PAYMENT};
use obol::x402::wire::PaymentPayload;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    for name in [PAYMENT_SIGNATURE, X_PAYMENT] {
        if let Ok(p) = PaymentPayload::from_header(name, value) {
            let again = PaymentPayload::from_header(name, &p.to_header())
                .expect("a re-encoded payment decodes");
            assert_eq!(again.version(), p.version());
            assert_eq!(again.to_header(), p.to_header());
        }
    }
});
