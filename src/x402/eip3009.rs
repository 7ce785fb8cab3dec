//! EIP-3009 `TransferWithAuthorization` over EIP-712: hashing, signing, recovery, and the local
//! (no-RPC) checks of an `exact` EVM payment.
//!
//! Recovery mirrors USDC's `ECRecover.sol`: exactly 65 bytes `r‖s‖v`, `v ∈ {27, 28}`, low `s`.

use std::borrow::Cow;

use alloy_primitives::{Address, B256, U256, uint};
use alloy_signer::SignerSync as _;
use alloy_signer::k256;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Eip712Domain, SolStruct as _};
use serde_json::{Value, json};

use super::amount::parse_atomic;
use super::networks::Asset;
use super::wire::{Authorization, ExactEvmPayload};

alloy_sol_types::sol! {
    /// The EIP-3009 message a payer signs.
    #[derive(Debug, PartialEq, Eq)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// `keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")`,
/// as hard-coded in USDC's `EIP3009.sol`.
pub const TRANSFER_WITH_AUTHORIZATION_TYPEHASH: B256 = B256::new(alloy_primitives::hex!(
    "7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267"
));

/// secp256k1n / 2: the largest `s` USDC's `ECRecover.sol` accepts.
const HALF_N: U256 = uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

/// The seconds `validBefore` must lie beyond `now` (block-time buffer of the reference code).
pub const VALID_BEFORE_BUFFER_SECS: u64 = 6;

/// Why a signature could not be made, parsed or recovered. Never contains the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature must be 65 bytes, got {0}")]
    Length(usize),
    #[error("signature v must be 27 or 28, got {0}")]
    BadV(u8),
    #[error("signature s is in the upper half of the curve order (malleable)")]
    HighS,
    #[error("signature is not 0x-prefixed hex")]
    Hex,
    #[error("signature does not recover to a public key")]
    Recovery,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The EIP-712 domain of an EIP-3009 token: name, version, chain id, token address.
pub fn domain(
    name: &str,
    version: &str,
    chain_id: u64,
    verifying_contract: Address,
) -> Eip712Domain {
    Eip712Domain::new(
        Some(Cow::Owned(name.to_string())),
        Some(Cow::Owned(version.to_string())),
        Some(U256::from(chain_id)),
        Some(verifying_contract),
        None,
    )
}

/// The EIP-712 digest to sign: `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(auth))`.
pub fn signing_hash(auth: &TransferWithAuthorization, domain: &Eip712Domain) -> B256 {
    auth.eip712_signing_hash(domain)
}

/// Signs `hash` with a local key: 65 bytes `r‖s‖v`, `v ∈ {27, 28}`, low `s`.
pub fn sign_hash_local(signer: &PrivateKeySigner, hash: B256) -> Result<[u8; 65], SignatureError> {
    let sig = signer
        .sign_hash_sync(&hash)
        .map_err(|e| SignatureError::Signing(e.to_string()))?;
    Ok(sig.as_bytes())
}

fn uint_json(v: U256) -> Value {
    Value::String(v.to_string())
}

/// The full EIP-712 typed-data JSON (`types` with `EIP712Domain`, `primaryType`, `domain`,
/// `message`), as a remote signer's `POST /api/v1/sign/<addr>/typed-data` or
/// `cast wallet sign --data` take it. uint256 message fields are decimal strings, the nonce
/// 0x-hex, the domain `chainId` a JSON number.
pub fn typed_data_json(auth: &TransferWithAuthorization, domain: &Eip712Domain) -> Value {
    let mut domain_types = Vec::new();
    let mut domain_obj = serde_json::Map::new();
    if let Some(name) = &domain.name {
        domain_types.push(json!({"name": "name", "type": "string"}));
        domain_obj.insert("name".into(), json!(name));
    }
    if let Some(version) = &domain.version {
        domain_types.push(json!({"name": "version", "type": "string"}));
        domain_obj.insert("version".into(), json!(version));
    }
    if let Some(chain_id) = domain.chain_id {
        domain_types.push(json!({"name": "chainId", "type": "uint256"}));
        let v = u64::try_from(chain_id).map_or_else(|_| uint_json(chain_id), |id| json!(id));
        domain_obj.insert("chainId".into(), v);
    }
    if let Some(contract) = domain.verifying_contract {
        domain_types.push(json!({"name": "verifyingContract", "type": "address"}));
        domain_obj.insert(
            "verifyingContract".into(),
            json!(contract.to_checksum(None)),
        );
    }
    if let Some(salt) = domain.salt {
        domain_types.push(json!({"name": "salt", "type": "bytes32"}));
        domain_obj.insert("salt".into(), json!(salt.to_string()));
    }
    json!({
        "types": {
            "EIP712Domain": domain_types,
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"}
            ]
        },
        "primaryType": "TransferWithAuthorization",
        "domain": domain_obj,
        "message": {
            "from": auth.from.to_checksum(None),
            "to": auth.to.to_checksum(None),
            "value": uint_json(auth.value),
            "validAfter": uint_json(auth.validAfter),
            "validBefore": uint_json(auth.validBefore),
            "nonce": auth.nonce.to_string(),
        }
    })
}

/// Recovers the signer of `hash`. Requires exactly 65 bytes, `v ∈ {27, 28}` and
/// `s ≤ secp256k1n/2` (what USDC accepts on chain).
pub fn recover(signature: &[u8], hash: B256) -> Result<Address, SignatureError> {
    let bytes: &[u8; 65] = signature
        .try_into()
        .map_err(|_| SignatureError::Length(signature.len()))?;
    let (rs, v) = bytes.split_at(64);
    let v = v.first().copied().unwrap_or_default();
    let parity = match v {
        27 => false,
        28 => true,
        other => return Err(SignatureError::BadV(other)),
    };
    let (r_bytes, s_bytes) = rs.split_at(32);
    if U256::from_be_slice(s_bytes) > HALF_N {
        return Err(SignatureError::HighS);
    }
    ecrecover(r_bytes, s_bytes, parity, hash).ok_or(SignatureError::Recovery)
}

/// ECDSA public-key recovery on secp256k1, as the EVM's `ecrecover` does it:
/// `Q = r⁻¹(s·R − z·G)` with `R` the curve point of x-coordinate `r` and y-parity `parity`.
///
/// Unlike `k256`'s `recover_from_prehash`, this does not verify the signature against the
/// recovered key afterwards: that second verification cannot fail for a correctly recovered
/// key, costs as much again, and the caller compares the resulting address with the expected
/// signer anyway (a tampered signature recovers some other address). A unit test cross-checks
/// this function against alloy/k256 recovery on random keys and messages.
fn ecrecover(r_bytes: &[u8], s_bytes: &[u8], parity: bool, hash: B256) -> Option<Address> {
    use k256::elliptic_curve::PrimeField as _;
    use k256::elliptic_curve::group::Group as _;
    use k256::elliptic_curve::ops::{LinearCombination as _, Reduce};
    use k256::elliptic_curve::point::DecompressPoint as _;
    use k256::elliptic_curve::sec1::ToEncodedPoint as _;
    use k256::elliptic_curve::subtle::Choice;
    use k256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};

    let r_field = FieldBytes::from(<[u8; 32]>::try_from(r_bytes).ok()?);
    let s_field = FieldBytes::from(<[u8; 32]>::try_from(s_bytes).ok()?);
    // from_repr refuses values >= n, as ecrecover does.
    let r = Option::<Scalar>::from(Scalar::from_repr(r_field))?;
    let s = Option::<Scalar>::from(Scalar::from_repr(s_field))?;
    if bool::from(r.is_zero()) || bool::from(s.is_zero()) {
        return None;
    }
    let big_r = Option::<AffinePoint>::from(AffinePoint::decompress(
        &r_field,
        Choice::from(u8::from(parity)),
    ))?;
    let z = <Scalar as Reduce<k256::U256>>::reduce_bytes(&FieldBytes::from(hash.0));
    let r_inv = Option::<Scalar>::from(r.invert())?;
    let u1 = -(r_inv * z);
    let u2 = r_inv * s;
    let q = ProjectivePoint::lincomb(
        &ProjectivePoint::GENERATOR,
        &u1,
        &ProjectivePoint::from(big_r),
        &u2,
    );
    if bool::from(q.is_identity()) {
        return None;
    }
    let encoded = q.to_affine().to_encoded_point(false);
    let xy = encoded.as_bytes().get(1..)?;
    (xy.len() == 64).then(|| Address::from_raw_public_key(xy))
}

/// Parses `0x`-prefixed (or bare) hex into bytes. The length is checked by [`recover`].
pub fn parse_signature_hex(s: &str) -> Result<Vec<u8>, SignatureError> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    // 65 bytes is 130 hex digits; anything far longer is not an EOA signature we could check
    // (smart-wallet signatures are refused as well: no RPC here).
    if hex.len() > 4096 {
        return Err(SignatureError::Length(hex.len() / 2));
    }
    alloy_primitives::hex::decode(hex).map_err(|_| SignatureError::Hex)
}

/// `0x` + 64 hex digits of fresh randomness: an EIP-3009 nonce.
pub fn random_nonce() -> B256 {
    B256::random()
}

/// The wire form of a signed authorization.
pub fn to_wire(auth: &TransferWithAuthorization, signature: &[u8]) -> ExactEvmPayload {
    ExactEvmPayload {
        signature: alloy_primitives::hex::encode_prefixed(signature),
        authorization: Authorization {
            from: auth.from.to_checksum(None),
            to: auth.to.to_checksum(None),
            value: auth.value.to_string(),
            valid_after: auth.validAfter.to_string(),
            valid_before: auth.validBefore.to_string(),
            nonce: auth.nonce.to_string(),
        },
    }
}

/// What the seller expects a payment to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub chain_id: u64,
    /// The token contract (EIP-712 `verifyingContract`).
    pub asset: Address,
    pub pay_to: Address,
    /// Exact amount in atomic units.
    pub amount: U256,
    pub eip712_name: String,
    pub eip712_version: String,
    pub max_timeout_seconds: u64,
}

impl Expected {
    /// The expectation for paying `amount` of `asset` on `chain_id` to `pay_to`.
    pub fn for_asset(
        chain_id: u64,
        asset: &Asset,
        pay_to: Address,
        amount: U256,
        max_timeout_seconds: u64,
    ) -> Expected {
        Expected {
            chain_id,
            asset: asset.address,
            pay_to,
            amount,
            eip712_name: asset.eip712_name.clone(),
            eip712_version: asset.eip712_version.clone(),
            max_timeout_seconds,
        }
    }

    /// The EIP-712 domain of the expected token.
    pub fn domain(&self) -> Eip712Domain {
        domain(
            &self.eip712_name,
            &self.eip712_version,
            self.chain_id,
            self.asset,
        )
    }
}

/// A payment that passed [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAuthorization {
    /// `from`, proven by the signature.
    pub payer: Address,
    pub to: Address,
    pub value: U256,
    pub valid_after: u64,
    /// Saturated at `u64::MAX` for absurdly far expiries.
    pub valid_before: u64,
    pub nonce: B256,
}

/// Why [`check`] refused a payment. Never contains the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("authorization field `{field}` is malformed")]
    Malformed { field: &'static str },
    #[error("invalid signature: {0}")]
    Signature(SignatureError),
    #[error("signature is from {recovered}, not from the payer {from}")]
    SignerMismatch { from: Address, recovered: Address },
    #[error("payment goes to {got}, expected {expected}")]
    RecipientMismatch { expected: Address, got: Address },
    #[error("payment value {got} differs from the price {expected}")]
    ValueMismatch { expected: U256, got: U256 },
    #[error("authorization is not valid before {valid_after} (now {now})")]
    NotYetValid { valid_after: U256, now: u64 },
    #[error("authorization expires at {valid_before}, too soon (now {now})")]
    Expired { valid_before: U256, now: u64 },
}

impl CheckError {
    /// The x402 failure reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            CheckError::Malformed { .. } => "invalid_payload",
            CheckError::Signature(_) | CheckError::SignerMismatch { .. } => {
                "invalid_exact_evm_signature"
            }
            CheckError::RecipientMismatch { .. } => "invalid_exact_evm_recipient_mismatch",
            CheckError::ValueMismatch { .. } => "invalid_exact_evm_authorization_value",
            CheckError::NotYetValid { .. } => "invalid_exact_evm_payload_authorization_valid_after",
            CheckError::Expired { .. } => "invalid_exact_evm_payload_authorization_valid_before",
        }
    }
}

/// `0x` + 40 hex digits, any case.
fn parse_wire_address(s: &str, field: &'static str) -> Result<Address, CheckError> {
    let malformed = CheckError::Malformed { field };
    let hex = s.strip_prefix("0x").ok_or(malformed.clone())?;
    if hex.len() != 40 {
        return Err(malformed);
    }
    s.parse().map_err(|_| malformed)
}

fn parse_wire_uint(s: &str, field: &'static str) -> Result<U256, CheckError> {
    parse_atomic(s).map_err(|_| CheckError::Malformed { field })
}

fn parse_nonce(s: &str) -> Result<B256, CheckError> {
    let malformed = CheckError::Malformed { field: "nonce" };
    let hex = s.strip_prefix("0x").ok_or(malformed.clone())?;
    if hex.len() != 64 {
        return Err(malformed);
    }
    s.parse().map_err(|_| malformed)
}

fn saturate_u64(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// The authorization of `payload` as the typed EIP-712 message, every field parsed.
pub fn parse_authorization(a: &Authorization) -> Result<TransferWithAuthorization, CheckError> {
    Ok(TransferWithAuthorization {
        from: parse_wire_address(&a.from, "from")?,
        to: parse_wire_address(&a.to, "to")?,
        value: parse_wire_uint(&a.value, "value")?,
        validAfter: parse_wire_uint(&a.valid_after, "validAfter")?,
        validBefore: parse_wire_uint(&a.valid_before, "validBefore")?,
        nonce: parse_nonce(&a.nonce)?,
    })
}

/// The local checks of an EVM `exact` payment (no chain access): every field parses, the
/// recipient is `pay_to`, the value is exactly `amount`, `validAfter <= now`,
/// `validBefore >= now + 6`, and the signature (65 bytes, low s) recovers to `from` under the
/// **expected** token's domain. Cheap checks run before the signature recovery.
///
/// Nonce freshness, balance and on-chain simulation are the facilitator's job.
pub fn check(
    payload: &ExactEvmPayload,
    expected: &Expected,
    now: u64,
) -> Result<CheckedAuthorization, CheckError> {
    let auth = parse_authorization(&payload.authorization)?;
    let signature = parse_signature_hex(&payload.signature).map_err(CheckError::Signature)?;

    if auth.to != expected.pay_to {
        return Err(CheckError::RecipientMismatch {
            expected: expected.pay_to,
            got: auth.to,
        });
    }
    if auth.value != expected.amount {
        return Err(CheckError::ValueMismatch {
            expected: expected.amount,
            got: auth.value,
        });
    }
    let now_u = U256::from(now);
    if auth.validAfter > now_u {
        return Err(CheckError::NotYetValid {
            valid_after: auth.validAfter,
            now,
        });
    }
    if auth.validBefore < now_u + U256::from(VALID_BEFORE_BUFFER_SECS) {
        return Err(CheckError::Expired {
            valid_before: auth.validBefore,
            now,
        });
    }

    let hash = signing_hash(&auth, &expected.domain());
    let recovered = recover(&signature, hash).map_err(CheckError::Signature)?;
    if recovered != auth.from {
        return Err(CheckError::SignerMismatch {
            from: auth.from,
            recovered,
        });
    }
    Ok(CheckedAuthorization {
        payer: auth.from,
        to: auth.to,
        value: auth.value,
        valid_after: saturate_u64(auth.validAfter),
        valid_before: saturate_u64(auth.validBefore),
        nonce: auth.nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Signature, address, b256};
    use alloy_sol_types::SolStruct;

    const ANVIL_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const ANVIL_ADDR: Address = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    const BASE_SEPOLIA_USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
    const BASE_USDC: Address = address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
    const NONCE: B256 = b256!("0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480");
    const SPEC_FROM: Address = address!("0x857b06519E91e3A54538791bDbb0E22373e36b66");
    const SPEC_TO: Address = address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C");
    const SPEC_SIG: &str = "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c";
    const ANVIL_SIG_SEPOLIA: &str = "0x6f561d84da69dea3bf562f243b08ec7d3b6b140f7466c7c797d2a24554ed477b60b03719ddabe477324676e2ede73876c8ae62be1c0630b75bb5f050f48b21d71c";
    const ANVIL_SIG_BASE: &str = "0x9b12ba34042dbeddf877e7a2b2adb13ae6de36e092f62f4539105a7524c73a824fc0a9fe567a5e8c03935b98892118b7c1bb7cb8a8c08f6134972450f4a204641b";
    const N: U256 = uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);

    fn spec_auth() -> TransferWithAuthorization {
        TransferWithAuthorization {
            from: SPEC_FROM,
            to: SPEC_TO,
            value: U256::from(10_000u64),
            validAfter: U256::from(1_740_672_089u64),
            validBefore: U256::from(1_740_672_154u64),
            nonce: NONCE,
        }
    }

    fn anvil_auth() -> TransferWithAuthorization {
        TransferWithAuthorization {
            from: ANVIL_ADDR,
            to: address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
            ..spec_auth()
        }
    }

    fn sepolia_domain() -> Eip712Domain {
        domain("USDC", "2", 84532, BASE_SEPOLIA_USDC)
    }

    fn base_domain() -> Eip712Domain {
        domain("USD Coin", "2", 8453, BASE_USDC)
    }

    fn signer() -> PrivateKeySigner {
        ANVIL_KEY.parse().unwrap()
    }

    fn sig(hex: &str) -> Vec<u8> {
        parse_signature_hex(hex).unwrap()
    }

    fn spec_expected() -> Expected {
        Expected {
            chain_id: 84532,
            asset: BASE_SEPOLIA_USDC,
            pay_to: SPEC_TO,
            amount: U256::from(10_000u64),
            eip712_name: "USDC".into(),
            eip712_version: "2".into(),
            max_timeout_seconds: 60,
        }
    }

    fn spec_payload() -> ExactEvmPayload {
        to_wire(&spec_auth(), &sig(SPEC_SIG))
    }

    /// A `now` inside the spec example's window.
    const SPEC_NOW: u64 = 1_740_672_100;

    #[test]
    fn type_hash_matches_usdc() {
        assert_eq!(
            spec_auth().eip712_type_hash(),
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH
        );
        assert_eq!(
            TransferWithAuthorization::eip712_encode_type(),
            "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
        );
    }

    #[test]
    fn spec_example_recovers_to_from() {
        let hash = signing_hash(&spec_auth(), &sepolia_domain());
        assert_eq!(
            hash,
            b256!("0xf256992871671abcb27ff92885a7afa46218724e5fc0bac35d050115aa1d22e6")
        );
        assert_eq!(recover(&sig(SPEC_SIG), hash), Ok(SPEC_FROM));
        // under any other domain it is someone else
        for d in [
            domain("USD Coin", "2", 84532, BASE_SEPOLIA_USDC),
            domain("USDC", "2", 8453, BASE_SEPOLIA_USDC),
            domain("USDC", "2", 84532, BASE_USDC),
            domain("USDC", "1", 84532, BASE_SEPOLIA_USDC),
        ] {
            let other = recover(&sig(SPEC_SIG), signing_hash(&spec_auth(), &d)).unwrap();
            assert_ne!(other, SPEC_FROM);
        }
    }

    #[test]
    fn anvil_vectors_base_sepolia_and_base() {
        let auth = anvil_auth();
        assert_eq!(
            auth.eip712_hash_struct(),
            b256!("0x06e588254ea3b3b6fcb40f1eec279f28af77c9f9ba2f9ba7b0cdf0ef559eb03b")
        );
        let s = signer();
        assert_eq!(s.address(), ANVIL_ADDR);
        let cases = [
            (
                sepolia_domain(),
                b256!("0x71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818"),
                b256!("0xdd936365f5320446e7317e2ff2a02257f642c4528ebbb626575491ff58f0366d"),
                ANVIL_SIG_SEPOLIA,
                28u8,
            ),
            (
                base_domain(),
                b256!("0x02fa7265e7c5d81118673727957699e4d68f74cd74b7db77da710fe8a2c7834f"),
                b256!("0x1575d494696588bae10b3d187f719789f1e9c37b6fd3ab68479d58209137dddb"),
                ANVIL_SIG_BASE,
                27u8,
            ),
        ];
        for (d, separator, hash, want_sig, v) in cases {
            assert_eq!(d.separator(), separator);
            assert_eq!(signing_hash(&auth, &d), hash);
            let got = sign_hash_local(&s, hash).unwrap();
            assert_eq!(alloy_primitives::hex::encode_prefixed(got), want_sig);
            assert_eq!(got[64], v);
            assert_eq!(recover(&got, hash), Ok(ANVIL_ADDR));
        }
    }

    #[test]
    fn tampering_changes_the_signer_or_fails() {
        let hash = signing_hash(&spec_auth(), &sepolia_domain());
        let good = sig(SPEC_SIG);
        for i in [0usize, 31, 40, 63] {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            match recover(&bad, hash) {
                Ok(addr) => assert_ne!(addr, SPEC_FROM, "byte {i}"),
                Err(e) => assert!(
                    matches!(e, SignatureError::Recovery | SignatureError::HighS),
                    "byte {i}: {e}"
                ),
            }
        }
        // value changed: the message hash differs, so the signer differs
        let mut auth = spec_auth();
        auth.value = U256::from(10_001u64);
        let other = recover(&good, signing_hash(&auth, &sepolia_domain())).unwrap();
        assert_ne!(other, SPEC_FROM);
    }

    #[test]
    fn high_s_is_rejected() {
        let hash = signing_hash(&anvil_auth(), &sepolia_domain());
        let good = sign_hash_local(&signer(), hash).unwrap();
        let s = U256::from_be_slice(&good[32..64]);
        let mut flipped = good;
        flipped[32..64].copy_from_slice(&(N - s).to_be_bytes::<32>());
        flipped[64] = if good[64] == 27 { 28 } else { 27 };
        // mathematically the same signer (alloy's own recovery normalises s) ...
        let alloy_sig = Signature::from_raw(&flipped).unwrap();
        assert_eq!(
            alloy_sig.recover_address_from_prehash(&hash).ok(),
            Some(ANVIL_ADDR)
        );
        // ... but USDC refuses it, and so do we
        assert_eq!(recover(&flipped, hash), Err(SignatureError::HighS));
    }

    #[test]
    fn v_and_length_rules() {
        let hash = signing_hash(&spec_auth(), &sepolia_domain());
        let good = sig(SPEC_SIG);
        for v in [0u8, 1, 26, 29, 255] {
            let mut bad = good.clone();
            bad[64] = v;
            assert_eq!(recover(&bad, hash), Err(SignatureError::BadV(v)));
        }
        assert_eq!(recover(&good[..64], hash), Err(SignatureError::Length(64)));
        assert_eq!(recover(&[], hash), Err(SignatureError::Length(0)));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(recover(&long, hash), Err(SignatureError::Length(66)));
        let mut zero_r = good.clone();
        zero_r[..32].fill(0);
        assert_eq!(recover(&zero_r, hash), Err(SignatureError::Recovery));
    }

    #[test]
    fn signature_hex_parsing() {
        assert_eq!(parse_signature_hex("0x0aff"), Ok(vec![0x0a, 0xff]));
        assert_eq!(parse_signature_hex("0X0A"), Ok(vec![0x0a]));
        assert_eq!(parse_signature_hex("0aff"), Ok(vec![0x0a, 0xff]));
        assert_eq!(parse_signature_hex("0xzz"), Err(SignatureError::Hex));
        assert_eq!(parse_signature_hex("0xabc"), Err(SignatureError::Hex));
        assert!(matches!(
            parse_signature_hex(&"ab".repeat(5000)),
            Err(SignatureError::Length(_))
        ));
    }

    #[test]
    fn check_accepts_the_spec_payment() {
        let ok = check(&spec_payload(), &spec_expected(), SPEC_NOW).unwrap();
        assert_eq!(ok.payer, SPEC_FROM);
        assert_eq!(ok.to, SPEC_TO);
        assert_eq!(ok.value, U256::from(10_000u64));
        assert_eq!(ok.valid_after, 1_740_672_089);
        assert_eq!(ok.valid_before, 1_740_672_154);
        assert_eq!(ok.nonce, NONCE);
        // lowercase addresses on the wire are fine
        let mut p = spec_payload();
        p.authorization.from = p.authorization.from.to_lowercase();
        p.authorization.to = p.authorization.to.to_lowercase();
        assert!(check(&p, &spec_expected(), SPEC_NOW).is_ok());
    }

    #[test]
    fn check_time_window() {
        let e = spec_expected();
        // real time: long expired
        let err = check(&spec_payload(), &e, 1_800_000_000).unwrap_err();
        assert!(matches!(err, CheckError::Expired { .. }));
        assert_eq!(
            err.reason(),
            "invalid_exact_evm_payload_authorization_valid_before"
        );
        // the 6 s buffer: validBefore - 6 is the last accepted now
        assert!(check(&spec_payload(), &e, 1_740_672_154 - 6).is_ok());
        assert!(matches!(
            check(&spec_payload(), &e, 1_740_672_154 - 5),
            Err(CheckError::Expired { .. })
        ));
        // not yet valid: validAfter == now is fine, now < validAfter is not
        assert!(check(&spec_payload(), &e, 1_740_672_089).is_ok());
        let err = check(&spec_payload(), &e, 1_740_672_088).unwrap_err();
        assert!(matches!(err, CheckError::NotYetValid { .. }));
        assert_eq!(
            err.reason(),
            "invalid_exact_evm_payload_authorization_valid_after"
        );
    }

    #[test]
    fn check_recipient_value_and_domain() {
        let mut e = spec_expected();
        e.pay_to = ANVIL_ADDR;
        let err = check(&spec_payload(), &e, SPEC_NOW).unwrap_err();
        assert_eq!(err.reason(), "invalid_exact_evm_recipient_mismatch");

        let mut e = spec_expected();
        e.amount = U256::from(9_999u64);
        let err = check(&spec_payload(), &e, SPEC_NOW).unwrap_err();
        assert_eq!(
            err,
            CheckError::ValueMismatch {
                expected: U256::from(9_999u64),
                got: U256::from(10_000u64)
            }
        );
        assert_eq!(err.reason(), "invalid_exact_evm_authorization_value");
        // overpaying is refused too: exact match
        e.amount = U256::from(10_001u64);
        assert!(matches!(
            check(&spec_payload(), &e, SPEC_NOW),
            Err(CheckError::ValueMismatch { .. })
        ));

        // the mainnet-name pitfall: "USD Coin" on Base Sepolia recovers someone else
        let mut e = spec_expected();
        e.eip712_name = "USD Coin".into();
        let err = check(&spec_payload(), &e, SPEC_NOW).unwrap_err();
        assert!(matches!(err, CheckError::SignerMismatch { from, .. } if from == SPEC_FROM));
        assert_eq!(err.reason(), "invalid_exact_evm_signature");

        // a tampered value under a matching price: the signature no longer matches
        let mut p = spec_payload();
        p.authorization.value = "10001".into();
        let mut e = spec_expected();
        e.amount = U256::from(10_001u64);
        assert!(matches!(
            check(&p, &e, SPEC_NOW),
            Err(CheckError::SignerMismatch { .. })
        ));
    }

    #[test]
    fn check_malformed_fields() {
        type Tamper = fn(&mut ExactEvmPayload);
        let cases: [(&str, Tamper); 9] = [
            ("from", |p| p.authorization.from = "0x1234".into()),
            ("from", |p| {
                p.authorization.from = "857b06519E91e3A54538791bDbb0E22373e36b66".into()
            }),
            ("to", |p| p.authorization.to = "bob".into()),
            ("value", |p| p.authorization.value = "-1".into()),
            ("value", |p| p.authorization.value = "1.5".into()),
            ("validAfter", |p| p.authorization.valid_after = "".into()),
            ("validBefore", |p| {
                p.authorization.valid_before = "0x10".into()
            }),
            ("nonce", |p| p.authorization.nonce = "0x1234".into()),
            ("nonce", |p| {
                p.authorization.nonce =
                    "f3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480".into()
            }),
        ];
        for (field, tamper) in cases {
            let mut p = spec_payload();
            tamper(&mut p);
            let err = check(&p, &spec_expected(), SPEC_NOW).unwrap_err();
            assert_eq!(err, CheckError::Malformed { field }, "{field}");
            assert_eq!(err.reason(), "invalid_payload");
        }
        let mut p = spec_payload();
        p.signature = "0xnothex".into();
        let err = check(&p, &spec_expected(), SPEC_NOW).unwrap_err();
        assert_eq!(err, CheckError::Signature(SignatureError::Hex));
        assert_eq!(err.reason(), "invalid_exact_evm_signature");
        p.signature = "0x1234".into();
        assert_eq!(
            check(&p, &spec_expected(), SPEC_NOW),
            Err(CheckError::Signature(SignatureError::Length(2)))
        );
    }

    #[test]
    fn huge_valid_before_saturates() {
        let s = signer();
        let e = Expected {
            pay_to: SPEC_TO,
            ..spec_expected()
        };
        let auth = TransferWithAuthorization {
            from: ANVIL_ADDR,
            to: SPEC_TO,
            value: U256::from(10_000u64),
            validAfter: U256::ZERO,
            validBefore: U256::MAX,
            nonce: random_nonce(),
        };
        let sig = sign_hash_local(&s, signing_hash(&auth, &e.domain())).unwrap();
        let ok = check(&to_wire(&auth, &sig), &e, SPEC_NOW).unwrap();
        assert_eq!(ok.valid_before, u64::MAX);
        assert_eq!(ok.payer, ANVIL_ADDR);
    }

    #[test]
    fn errors_do_not_show_the_signature() {
        let mut p = spec_payload();
        p.signature.replace_range(10..12, "zz");
        let err = check(&p, &spec_expected(), SPEC_NOW).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("2d6a7588"), "{text}");
    }

    #[test]
    fn ecrecover_agrees_with_alloy_on_random_inputs() {
        for _ in 0..200 {
            let key = PrivateKeySigner::random();
            let hash = B256::random();
            let sig = sign_hash_local(&key, hash).unwrap();
            assert_eq!(recover(&sig, hash), Ok(key.address()));
            // a different message: both implementations recover the same (other) address
            let other = B256::random();
            let alloy = Signature::from_raw(&sig)
                .unwrap()
                .recover_address_from_prehash(&other)
                .ok();
            assert_eq!(recover(&sig, other).ok(), alloy);
        }
        // r >= n and s == 0 are refused
        let hash = B256::random();
        let mut bad = [0xffu8; 65];
        bad[32..64].copy_from_slice(&U256::from(1u8).to_be_bytes::<32>());
        bad[64] = 27;
        assert_eq!(recover(&bad, hash), Err(SignatureError::Recovery));
        let mut zero_s = sign_hash_local(&signer(), hash).unwrap();
        zero_s[32..64].fill(0);
        assert_eq!(recover(&zero_s, hash), Err(SignatureError::Recovery));
    }

    #[test]
    fn typed_data_json_shape() {
        let j = typed_data_json(&anvil_auth(), &sepolia_domain());
        assert_eq!(j["primaryType"], "TransferWithAuthorization");
        assert_eq!(
            j["domain"],
            json!({"name": "USDC", "version": "2", "chainId": 84532,
                   "verifyingContract": "0x036CbD53842c5426634e7929541eC2318f3dCF7e"})
        );
        assert_eq!(
            j["types"]["EIP712Domain"],
            json!([{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                   {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}])
        );
        assert_eq!(
            j["types"]["TransferWithAuthorization"][5],
            json!({"name": "nonce", "type": "bytes32"})
        );
        assert_eq!(
            j["message"],
            json!({"from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                   "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                   "value": "10000", "validAfter": "1740672089", "validBefore": "1740672154",
                   "nonce": "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"})
        );
        // the domain object deserialises back to the same domain (alloy's own EIP-712 serde)
        let d: Eip712Domain = serde_json::from_value(j["domain"].clone()).unwrap();
        assert_eq!(d.separator(), sepolia_domain().separator());
    }

    #[test]
    fn to_wire_round_trips_through_parse() {
        let p = to_wire(&anvil_auth(), &sig(ANVIL_SIG_SEPOLIA));
        assert_eq!(p.signature, ANVIL_SIG_SEPOLIA);
        assert_eq!(p.authorization.value, "10000");
        assert_eq!(parse_authorization(&p.authorization), Ok(anvil_auth()));
        let n1 = random_nonce();
        assert_ne!(n1, random_nonce());
    }

    #[test]
    fn expected_for_asset_uses_the_asset_domain() {
        let reg = crate::x402::networks::Registry::builtin();
        let net = reg.resolve("base-sepolia").unwrap();
        let e = Expected::for_asset(
            net.chain_id,
            net.asset.as_ref().unwrap(),
            SPEC_TO,
            U256::from(10_000u64),
            60,
        );
        assert_eq!(e, spec_expected());
        assert_eq!(e.domain().separator(), sepolia_domain().separator());
    }
}
