//! Self-tests of the test rail, independent of obol's code: the token on anvil, the npm x402
//! reference seller and facilitator, and a full x402 v2 payment made with `cast` + serde_json.
//! If these fail, the rail is broken, not obol.

mod support;

use std::process::{Command, Stdio};

use alloy_primitives::{Address, B256, U256};
use serde_json::{Value, json};
use support::*;

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
}

fn header(resp: &reqwest::blocking::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header; headers: {:?}", resp.headers()))
        .to_str()
        .unwrap()
        .to_string()
}

/// `GET /paid` without payment; returns the decoded `PAYMENT-REQUIRED`.
fn payment_required(seller: &ReferenceSeller) -> Value {
    let resp = http().get(seller.paid_url()).send().unwrap();
    assert_eq!(resp.status().as_u16(), 402);
    decode_b64_json(&header(&resp, "payment-required"))
}

/// Runs `cast send` that must revert; returns its stderr (which carries the revert reason).
fn cast_send_reverts(anvil: &Anvil, args: &[&str]) -> String {
    let out = Command::new(rail_bin("cast"))
        .arg("send")
        .args([
            "--rpc-url",
            &anvil.rpc_url(),
            "--private-key",
            FACILITATOR_KEY,
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "cast send {args:?} should have reverted"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const TWA_VRS: &str = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)";
const TWA_BYTES: &str =
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)";

/// Positional args of `transferWithAuthorization` before the signature.
fn auth_args(token: &Token, auth: &Authorization) -> Vec<String> {
    vec![
        token.address().to_string(),
        auth.from.to_string(),
        auth.to.to_string(),
        auth.value.to_string(),
        auth.valid_after.to_string(),
        auth.valid_before.to_string(),
        auth.nonce.to_string(),
    ]
}

fn sign(token: &Token, auth: &Authorization) -> String {
    cast_sign_typed_data(
        PAYER_KEY,
        &typed_data(token.address(), token.name(), "2", CHAIN_ID, auth),
    )
}

/// (v, r, s) of a 65-byte r‖s‖v hex signature.
fn split_sig(sig: &str) -> (u8, String, String) {
    let hex = sig.trim_start_matches("0x");
    (
        u8::from_str_radix(&hex[128..130], 16).unwrap(),
        format!("0x{}", &hex[..64]),
        format!("0x{}", &hex[64..128]),
    )
}

#[test]
fn token_mints_and_reports_balances_on_chain() {
    let anvil = Anvil::start();
    let token = Token::deploy(&anvil, "USD Coin");

    assert_eq!(token.call("name()(string)", &[]), "\"USD Coin\"");
    assert_eq!(token.call("symbol()(string)", &[]), "\"USDC\"");
    assert_eq!(token.call("version()(string)", &[]), "\"2\"");
    assert_eq!(token.call("decimals()(uint8)", &[]), "6");
    assert_eq!(token.balance_of(PAYER_ADDRESS), U256::ZERO);

    token.mint(PAYER_ADDRESS, 10_000_000u64);
    token.mint(PAYER_ADDRESS, 5u64);
    assert_eq!(token.balance_of(PAYER_ADDRESS), U256::from(10_000_005u64));
    assert_eq!(token.total_supply(), U256::from(10_000_005u64));
    assert_eq!(token.balance_of(SELLER_ADDRESS), U256::ZERO);

    // The EIP-712 domain is USDC's: (name, "2", block.chainid, this).
    let expected = cast_offline(&[
        "keccak",
        &cast_offline(&[
            "abi-encode",
            "f(bytes32,bytes32,bytes32,uint256,address)",
            &cast_offline(&[
                "keccak",
                "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
            ]),
            &cast_offline(&["keccak", "USD Coin"]),
            &cast_offline(&["keccak", "2"]),
            "31337",
            &token.address().to_string(),
        ]),
    ]);
    assert_eq!(token.call("DOMAIN_SEPARATOR()(bytes32)", &[]), expected);
    assert_eq!(
        token.call("TRANSFER_WITH_AUTHORIZATION_TYPEHASH()(bytes32)", &[]),
        "0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267"
    );

    // Only the owner mints.
    let err = cast_send_reverts(
        &anvil,
        &[
            &token.address().to_string(),
            "mint(address,uint256)",
            &PAYER_ADDRESS.to_string(),
            "1",
        ],
    );
    assert!(err.contains("caller is not the owner"), "{err}");

    // Multicall3 is where the reference facilitator expects it.
    assert_ne!(anvil.cast(&["code", &MULTICALL3_ADDRESS.to_string()]), "0x");
}

#[test]
fn token_enforces_eip3009_like_usdc() {
    let anvil = Anvil::start();
    let token = Token::deploy(&anvil, "USD Coin");
    token.mint(PAYER_ADDRESS, 10_000_000u64);
    let submit = |sig_fn: &str, auth: &Authorization, sig_args: &[String]| -> Result<(), String> {
        let mut args = auth_args(&token, auth);
        args.insert(1, sig_fn.to_string());
        args.extend_from_slice(sig_args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = Command::new(rail_bin("cast"))
            .arg("send")
            .args([
                "--rpc-url",
                &anvil.rpc_url(),
                "--private-key",
                FACILITATOR_KEY,
                "--json",
            ])
            .args(&refs)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            let receipt: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(receipt["status"], "0x1");
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };

    // (v, r, s) overload.
    let a1 = Authorization::new(PAYER_ADDRESS, SELLER_ADDRESS, 1_500_000u64, 300);
    let sig1 = sign(&token, &a1);
    let (v, r, s) = split_sig(&sig1);
    assert!(!token.authorization_state(PAYER_ADDRESS, a1.nonce));
    submit(TWA_VRS, &a1, &[v.to_string(), r.clone(), s.clone()]).unwrap();
    assert!(token.authorization_state(PAYER_ADDRESS, a1.nonce));
    assert_eq!(token.balance_of(SELLER_ADDRESS), U256::from(1_500_000u64));

    // Replay, through either overload.
    let err = submit(TWA_BYTES, &a1, std::slice::from_ref(&sig1)).unwrap_err();
    assert!(
        err.contains("FiatTokenV2: authorization is used or canceled"),
        "{err}"
    );

    // `bytes signature` overload.
    let a2 = Authorization::new(PAYER_ADDRESS, SELLER_ADDRESS, 500_000u64, 300);
    submit(TWA_BYTES, &a2, &[sign(&token, &a2)]).unwrap();
    assert_eq!(token.balance_of(SELLER_ADDRESS), U256::from(2_000_000u64));
    assert_eq!(token.balance_of(PAYER_ADDRESS), U256::from(8_000_000u64));

    // Time window.
    let now = anvil.block_timestamp();
    let mut early = Authorization::new(PAYER_ADDRESS, SELLER_ADDRESS, 1u64, 300);
    early.valid_after = now + 3600;
    early.valid_before = now + 7200;
    let err = submit(TWA_BYTES, &early, &[sign(&token, &early)]).unwrap_err();
    assert!(
        err.contains("FiatTokenV2: authorization is not yet valid"),
        "{err}"
    );
    let mut late = Authorization::new(PAYER_ADDRESS, SELLER_ADDRESS, 1u64, 300);
    late.valid_after = 0;
    late.valid_before = now - 1;
    let err = submit(TWA_BYTES, &late, &[sign(&token, &late)]).unwrap_err();
    assert!(
        err.contains("FiatTokenV2: authorization is expired"),
        "{err}"
    );

    // Signature checks: wrong signer, high-s twin, bad v, wrong length, changed amount.
    let a3 = Authorization::new(PAYER_ADDRESS, SELLER_ADDRESS, 1_000u64, 300);
    let sig3 = sign(&token, &a3);
    let forged = cast_sign_typed_data(
        SELLER_KEY,
        &typed_data(token.address(), token.name(), "2", CHAIN_ID, &a3),
    );
    let err = submit(TWA_BYTES, &a3, &[forged]).unwrap_err();
    assert!(err.contains("FiatTokenV2: invalid signature"), "{err}");

    let (v, r, s) = split_sig(&sig3);
    let n = U256::from_str_radix(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
        16,
    )
    .unwrap();
    let high_s = B256::from(n - s.parse::<U256>().unwrap()).to_string();
    let flipped_v = if v == 27 { 28 } else { 27 };
    let err = submit(TWA_VRS, &a3, &[flipped_v.to_string(), r.clone(), high_s]).unwrap_err();
    assert!(
        err.contains("ECRecover: invalid signature 's' value"),
        "{err}"
    );
    let err = submit(TWA_VRS, &a3, &["1".to_string(), r.clone(), s.clone()]).unwrap_err();
    assert!(
        err.contains("ECRecover: invalid signature 'v' value"),
        "{err}"
    );
    let err = submit(TWA_BYTES, &a3, &[sig3[..130].to_string()]).unwrap_err();
    assert!(err.contains("ECRecover: invalid signature length"), "{err}");
    let mut more = a3.clone();
    more.value = U256::from(2_000u64);
    let err = submit(TWA_BYTES, &more, std::slice::from_ref(&sig3)).unwrap_err();
    assert!(err.contains("FiatTokenV2: invalid signature"), "{err}");

    // Overdraft.
    let big = Authorization::new(PAYER_ADDRESS, SELLER_ADDRESS, 100_000_000u64, 300);
    let err = submit(TWA_BYTES, &big, &[sign(&token, &big)]).unwrap_err();
    assert!(
        err.contains("ERC20: transfer amount exceeds balance"),
        "{err}"
    );

    // None of the failures moved funds or burned the nonce.
    assert!(!token.authorization_state(PAYER_ADDRESS, a3.nonce));
    assert_eq!(token.balance_of(SELLER_ADDRESS), U256::from(2_000_000u64));
    submit(TWA_BYTES, &a3, &[sig3]).unwrap();
    assert_eq!(token.balance_of(SELLER_ADDRESS), U256::from(2_001_000u64));
}

#[test]
fn reference_seller_answers_402_with_v2_payment_required() {
    let rail = Rail::start();

    let free = http().get(rail.seller.free_url()).send().unwrap();
    assert_eq!(free.status().as_u16(), 200);

    let resp = http().get(rail.seller.paid_url()).send().unwrap();
    assert_eq!(resp.status().as_u16(), 402);
    let required = decode_b64_json(&header(&resp, "PAYMENT-REQUIRED"));
    assert_eq!(required["x402Version"], 2, "{required}");
    assert_eq!(
        required["resource"]["url"],
        rail.seller.paid_url(),
        "{required}"
    );
    let accepts = required["accepts"].as_array().expect("accepts array");
    assert_eq!(accepts.len(), 1, "{required}");
    let req = &accepts[0];
    assert_eq!(req["scheme"], "exact");
    assert_eq!(req["network"], "eip155:31337");
    assert_eq!(req["amount"], Rail::PRICE_ATOMIC.to_string());
    assert_eq!(
        req["asset"].as_str().unwrap().parse::<Address>().unwrap(),
        rail.token.address()
    );
    assert_eq!(
        req["payTo"].as_str().unwrap().parse::<Address>().unwrap(),
        SELLER_ADDRESS
    );
    assert_eq!(req["extra"]["name"], "USD Coin");
    assert_eq!(req["extra"]["version"], "2");
    assert!(req["maxTimeoutSeconds"].as_u64().unwrap() > 0, "{req}");

    // The facilitator the seller uses advertises the chain and its signer.
    let supported: Value = http()
        .get(format!("{}/supported", rail.facilitator.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let kinds = supported["kinds"].as_array().unwrap();
    assert!(
        kinds.contains(&json!({"x402Version": 2, "scheme": "exact", "network": "eip155:31337"})),
        "{supported}"
    );
    assert!(
        kinds.contains(&json!({"x402Version": 1, "scheme": "exact", "network": "local"})),
        "{supported}"
    );
    assert_eq!(
        supported["signers"]["eip155:*"][0]
            .as_str()
            .unwrap()
            .parse::<Address>()
            .unwrap(),
        FACILITATOR_ADDRESS
    );
}

#[test]
fn payment_without_obol_settles_on_chain() {
    let rail = Rail::start();
    let price = U256::from(Rail::PRICE_ATOMIC);
    let payer_before = rail.token.balance_of(PAYER_ADDRESS);
    let seller_before = rail.token.balance_of(SELLER_ADDRESS);
    assert_eq!(payer_before, U256::from(Rail::PAYER_FUNDS));

    let required = payment_required(&rail.seller);
    let (signature_header, auth) =
        payment_signature(&required, &required["accepts"][0], PAYER_KEY, PAYER_ADDRESS);

    let resp = http()
        .get(rail.seller.paid_url())
        .header("PAYMENT-SIGNATURE", &signature_header)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let receipt_header = resp
        .headers()
        .get("payment-response")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.text().unwrap();
    assert_eq!(
        status,
        200,
        "body: {body}\nfacilitator log:\n{}\nseller log:\n{}",
        rail.facilitator.log(),
        rail.seller.log()
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"secret": "paid content"})
    );

    let settle = decode_b64_json(&receipt_header.expect("PAYMENT-RESPONSE header"));
    assert_eq!(settle["success"], true, "{settle}");
    assert_eq!(settle["network"], "eip155:31337", "{settle}");
    assert_eq!(
        settle["payer"]
            .as_str()
            .unwrap()
            .parse::<Address>()
            .unwrap(),
        PAYER_ADDRESS
    );
    let tx: B256 = settle["transaction"]
        .as_str()
        .unwrap()
        .parse()
        .expect("transaction hash");
    let tx_receipt: Value =
        serde_json::from_str(&rail.anvil.cast(&["receipt", "--json", &tx.to_string()])).unwrap();
    assert_eq!(tx_receipt["status"], "0x1", "{tx_receipt}");
    assert_eq!(
        tx_receipt["to"]
            .as_str()
            .unwrap()
            .parse::<Address>()
            .unwrap(),
        rail.token.address()
    );

    assert_eq!(rail.token.balance_of(PAYER_ADDRESS), payer_before - price);
    assert_eq!(rail.token.balance_of(SELLER_ADDRESS), seller_before + price);
    assert!(rail.token.authorization_state(PAYER_ADDRESS, auth.nonce));

    // The same payment again: the reference stack refuses it and nothing moves.
    let replay = http()
        .get(rail.seller.paid_url())
        .header("PAYMENT-SIGNATURE", &signature_header)
        .send()
        .unwrap();
    assert_eq!(replay.status().as_u16(), 402);
    let again = decode_b64_json(&header(&replay, "payment-required"));
    assert_eq!(
        again["error"], "invalid_exact_evm_nonce_already_used",
        "{again}"
    );
    assert_eq!(rail.token.balance_of(PAYER_ADDRESS), payer_before - price);
    assert_eq!(rail.token.balance_of(SELLER_ADDRESS), seller_before + price);

    // One log line per verify/settle, never the signature.
    let log = rail.facilitator.log();
    assert!(log.contains("-> success tx="), "{log}");
    let sig = decode_b64_json(&signature_header)["payload"]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !log.contains(&sig[2..]),
        "facilitator log leaks the signature:\n{log}"
    );
}

/// Pins down how the reference facilitator reports bad payments (obol's facilitator client must
/// read these): HTTP 200 with `isValid:false` / `success:false` and a reason code, not 4xx.
#[test]
fn reference_facilitator_reports_invalid_payments_with_200() {
    let rail = Rail::start();
    let required = payment_required(&rail.seller);
    let accepted = &required["accepts"][0];
    let (header_value, auth) = payment_signature(&required, accepted, PAYER_KEY, PAYER_ADDRESS);
    let mut payload = decode_b64_json(&header_value);
    // The payer's authorization, signed by someone else.
    let forged = cast_sign_typed_data(
        SELLER_KEY,
        &typed_data(rail.token.address(), "USD Coin", "2", CHAIN_ID, &auth),
    );
    payload["payload"]["signature"] = json!(forged);
    let body =
        json!({"x402Version": 2, "paymentPayload": payload, "paymentRequirements": accepted});

    let verify = http()
        .post(format!("{}/verify", rail.facilitator.url()))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(verify.status().as_u16(), 200);
    let verify: Value = verify.json().unwrap();
    assert_eq!(verify["isValid"], false, "{verify}");
    assert_eq!(
        verify["invalidReason"], "invalid_exact_evm_signature",
        "{verify}"
    );

    let settle = http()
        .post(format!("{}/settle", rail.facilitator.url()))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(settle.status().as_u16(), 200);
    let settle: Value = settle.json().unwrap();
    assert_eq!(settle["success"], false, "{settle}");
    assert_eq!(
        settle["errorReason"], "invalid_exact_evm_signature",
        "{settle}"
    );
    assert_eq!(settle["transaction"], "", "{settle}");

    // Missing fields: 400 {error}. Unknown network: 500 {error}.
    let missing = http()
        .post(format!("{}/verify", rail.facilitator.url()))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 400);
    assert!(missing.json::<Value>().unwrap()["error"].is_string());
    let mut other_net = body.clone();
    other_net["paymentRequirements"]["network"] = json!("eip155:1");
    let unknown = http()
        .post(format!("{}/verify", rail.facilitator.url()))
        .json(&other_net)
        .send()
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 500);
    assert!(
        unknown.json::<Value>().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("eip155:1")
    );

    assert_eq!(
        rail.token.balance_of(PAYER_ADDRESS),
        U256::from(Rail::PAYER_FUNDS)
    );
}

#[test]
fn rail_networks_yaml_describes_the_chain() {
    let rail = Rail::start();
    let yaml = rail.networks_yaml();
    assert!(yaml.starts_with("networks:\n  - name: local\n"), "{yaml}");
    assert!(yaml.contains("caip2: \"eip155:31337\""), "{yaml}");
    assert!(
        yaml.contains(&format!("rpc: \"{}\"", rail.anvil.rpc_url())),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!("address: \"{}\"", rail.token.address())),
        "{yaml}"
    );
    assert!(yaml.contains("eip712Name: \"USD Coin\""), "{yaml}");
    assert!(yaml.contains("eip712Version: \"2\""), "{yaml}");
    assert!(yaml.contains("decimals: 6"), "{yaml}");
    let dir = tempfile::tempdir().unwrap();
    let path = rail.write_networks_file(dir.path());
    assert_eq!(std::fs::read_to_string(path).unwrap(), yaml);
}

/// The facilitator also serves x402 v1 for this chain under the network name `local`.
#[test]
fn reference_facilitator_settles_v1_payments_on_the_local_network() {
    let rail = Rail::start();
    let auth = Authorization::new(PAYER_ADDRESS, SELLER_ADDRESS, 25_000u64, 60);
    let signature = cast_sign_typed_data(
        PAYER_KEY,
        &typed_data(rail.token.address(), "USD Coin", "2", CHAIN_ID, &auth),
    );
    let requirements = json!({
        "scheme": "exact",
        "network": Facilitator::V1_NETWORK,
        "maxAmountRequired": "25000",
        "resource": "http://127.0.0.1/v1-resource",
        "description": "v1 self-test",
        "mimeType": "application/json",
        "payTo": SELLER_ADDRESS.to_string(),
        "maxTimeoutSeconds": 60,
        "asset": rail.token.address().to_string(),
        "extra": {"name": "USD Coin", "version": "2"},
    });
    let payload = json!({
        "x402Version": 1,
        "scheme": "exact",
        "network": Facilitator::V1_NETWORK,
        "payload": {"signature": signature, "authorization": auth.to_json()},
    });
    let body =
        json!({"x402Version": 1, "paymentPayload": payload, "paymentRequirements": requirements});

    let verify: Value = http()
        .post(format!("{}/verify", rail.facilitator.url()))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(verify["isValid"], true, "{verify}");
    let settle: Value = http()
        .post(format!("{}/settle", rail.facilitator.url()))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(settle["success"], true, "{settle}");
    assert_eq!(settle["network"], "local", "{settle}");
    assert_eq!(rail.token.balance_of(SELLER_ADDRESS), U256::from(25_000u64));
    assert!(rail.token.authorization_state(PAYER_ADDRESS, auth.nonce));
}
