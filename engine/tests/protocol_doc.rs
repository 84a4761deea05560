//! Keeps `docs/PROTOCOL.md` and the code in agreement: every example frame in the
//! document is re-encoded from the value it describes, and the reject-code table must
//! list exactly the engine's reasons with their numbers.

use fincore_engine::*;
use std::collections::BTreeMap;

fn protocol_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
    std::fs::read_to_string(path).expect("docs/PROTOCOL.md is readable")
}

/// The ```hex NAME blocks of the document, as bytes.
fn examples(doc: &str) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```hex ") else { continue };
        let mut bytes = Vec::new();
        for body in lines.by_ref().take_while(|l| !l.starts_with("```")) {
            for pair in body.split_whitespace() {
                bytes.push(u8::from_str_radix(pair, 16).expect("hex byte"));
            }
        }
        found.insert(name.trim().to_string(), bytes);
    }
    found
}

fn example_order() -> NewOrder {
    NewOrder {
        account: AccountId(7),
        instrument: InstrumentId(1),
        client_order_id: ClientOrderId(99),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        price: Price(10_125),
        qty: Qty(5),
        stp_mode: StpMode::CancelNewest,
        stp_scope: StpScope::Account,
        post_only: false,
    }
}

#[test]
fn example_frames_match_the_encoder() {
    let doc = protocol_doc();
    // Sections 7 on (the TCP layer) are checked by gateway/tests/protocol_doc.rs.
    let engine_part = doc.split("\n## 7. ").next().expect("text before section 7");
    let examples = examples(engine_part);
    let body = CommandBody::NewOrder(example_order());
    let command = Command { seq: 42, time_ns: 1_700_000_000_000_000_000, user: UserId(3), body };
    let accepted = Event::Accepted(OrderAccepted {
        order_id: OrderId(1001),
        account: AccountId(7),
        instrument: InstrumentId(1),
        client_order_id: ClientOrderId(99),
        side: Side::Buy,
        price: Price(10_125),
        qty: Qty(5),
        hold: 506_503,
    });
    let rejected = Event::Rejected(Rejected {
        kind: CommandKind::NewOrder,
        account: AccountId(7),
        client_id: 99,
        reason: RejectReason::InsufficientBalance,
    });
    let expected = [
        ("new_order", command.encode()),
        ("depth_query", Query::Depth { instrument: InstrumentId(1), levels: 5 }.encode()),
        ("accepted", accepted.encode()),
        ("rejected", rejected.encode()),
    ];
    assert_eq!(examples.len(), expected.len(), "every example in the doc is checked");
    for (name, bytes) in expected {
        assert_eq!(examples.get(name), Some(&bytes), "example `{name}` in docs/PROTOCOL.md");
    }
}

#[test]
fn reject_table_lists_every_code() {
    let doc = protocol_doc();
    let section = doc.split("## 5. Reject codes").nth(1).expect("section 5 exists");
    let section = section.split("\n## ").next().expect("non-empty");
    let mut listed = Vec::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let (Ok(code), Some(name)) = (cells[1].parse::<u16>(), cells[2].strip_prefix('`')) else {
            continue;
        };
        listed.push((code, name.trim_end_matches('`').to_string()));
    }
    let actual: Vec<(u16, String)> =
        RejectReason::ALL.iter().map(|r| (r.code(), format!("{r:?}"))).collect();
    assert_eq!(listed, actual);
}
