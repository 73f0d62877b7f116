//! Properties of the returns rule: whatever sequence of return requests and rejections arrives,
//! applying only the ones `check_returnable` accepts never puts more units in live returns than
//! were fulfilled; and no sequence of lifecycle moves escapes a terminal status.

use proptest::prelude::*;
use waybill_core::returns::{ReturnableLine, check_returnable};
use waybill_core::{Quantity, ReturnStatus};

#[derive(Debug, Clone)]
enum Step {
    Request { line: usize, units: u32 },
    Reject { index: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..3, 1u32..6).prop_map(|(line, units)| Step::Request { line, units }),
        (0usize..20).prop_map(|index| Step::Reject { index }),
    ]
}

proptest! {
    #[test]
    fn live_returns_never_exceed_fulfilled_units(
        fulfilled in proptest::collection::vec(0u32..8, 3),
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let ids = ["a", "b", "c"];
        // (line, units, live)
        let mut returns: Vec<(usize, u32, bool)> = Vec::new();
        for step in steps {
            match step {
                Step::Request { line, units } => {
                    let lines: Vec<ReturnableLine> = (0..3)
                        .map(|i| ReturnableLine {
                            id: ids[i].to_owned(),
                            fulfilled: fulfilled[i],
                            returned: returns
                                .iter()
                                .filter(|r| r.0 == i && r.2)
                                .map(|r| r.1)
                                .sum(),
                        })
                        .collect();
                    let q = Quantity::new("q", i64::from(units)).unwrap();
                    let accepted = check_returnable(&lines, &[(ids[line].to_owned(), q)]).is_ok();
                    prop_assert_eq!(accepted, units <= lines[line].returnable());
                    if accepted {
                        returns.push((line, units, true));
                    }
                }
                Step::Reject { index } => {
                    if let Some(r) = returns.get_mut(index) {
                        r.2 = false;
                    }
                }
            }
            for (i, f) in fulfilled.iter().enumerate() {
                let live: u32 = returns.iter().filter(|r| r.0 == i && r.2).map(|r| r.1).sum();
                prop_assert!(live <= *f, "line {} has {} live returned of {}", i, live, f);
            }
        }
    }

    #[test]
    fn terminal_statuses_stay_terminal(moves in proptest::collection::vec(0usize..5, 0..20)) {
        let mut status = ReturnStatus::Requested;
        for m in moves {
            let next = ReturnStatus::ALL[m];
            if status.can_move_to(next) {
                prop_assert!(status != ReturnStatus::Closed && status != ReturnStatus::Rejected);
                status = next;
            }
        }
        if matches!(status, ReturnStatus::Closed | ReturnStatus::Rejected) {
            prop_assert!(ReturnStatus::ALL.iter().all(|s| !status.can_move_to(*s)));
        }
    }
}
