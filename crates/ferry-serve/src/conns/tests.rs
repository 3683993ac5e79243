use super::*;

fn limits() -> Limits {
    Limits {
        max_active: 2,
        max_pending: 3,
        per_client: 4,
        first_request: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

#[test]
fn a_client_past_its_share_is_refused_and_others_are_not() {
    let table = Table::new(Limits {
        max_pending: 10,
        ..limits()
    });
    let held: Vec<Conn> = (0..4)
        .map(|_| table.admit(ip(2)).expect("admitted"))
        .collect();
    assert!(table.admit(ip(2)).is_none());
    assert_eq!(table.counters.refused_per_client.load(Ordering::Relaxed), 1);
    assert!(table.admit(ip(3)).is_some());
    drop(held);
    assert!(
        table.admit(ip(2)).is_some(),
        "slots come back when connections close"
    );
}

#[test]
fn a_full_pending_pool_closes_its_oldest_member() {
    let table = Table::new(limits());
    let first = table.admit(ip(2)).expect("1");
    let _second = table.admit(ip(3)).expect("2");
    let _third = table.admit(ip(4)).expect("3");
    assert!(!first.close.is_cancelled());
    let newest = table.admit(ip(5)).expect("4");
    assert!(
        first.close.is_cancelled(),
        "the oldest silent connection makes room"
    );
    assert_eq!(table.open(), (3, 0));
    assert_eq!(first.start().err(), Some(Refusal::Closed));
    assert!(newest.start().is_ok());
    assert_eq!(table.open(), (2, 1));
}

#[test]
fn full_active_slots_take_the_longest_idle_and_refuse_when_all_transfer() {
    let table = Table::new(limits());
    let a = table.admit(ip(2)).expect("a");
    let b = table.admit(ip(3)).expect("b");
    let ra = a.start().expect("a runs");
    drop(ra); // a is idle from now
    let rb = b.start().expect("b runs");
    let c = table.admit(ip(4)).expect("c");
    let rc = c.start().expect("c takes a's slot");
    assert!(a.close.is_cancelled(), "the idle connection made room");
    assert!(
        !b.close.is_cancelled(),
        "a transferring connection is never taken"
    );
    let d = table.admit(ip(5)).expect("d");
    assert_eq!(d.start().err(), Some(Refusal::Busy));
    assert_eq!(table.counters.busy.load(Ordering::Relaxed), 1);
    drop((rb, rc));
    assert!(d.start().is_ok(), "an idle slot can be taken again");
}

#[test]
fn the_sweeper_closes_silent_and_idle_connections_but_not_running_ones() {
    let table = Table::new(limits());
    let silent = table.admit(ip(2)).expect("silent");
    let idle = table.admit(ip(3)).expect("idle");
    drop(idle.start().expect("one request"));
    let busy = table.admit(ip(4)).expect("busy");
    let _running = busy.start().expect("running");
    let now = Instant::now();
    table.sweep(now + Duration::from_secs(9));
    assert!(!silent.close.is_cancelled());
    table.sweep(now + Duration::from_secs(11));
    assert!(
        silent.close.is_cancelled(),
        "no request within the first-request timeout"
    );
    assert!(!idle.close.is_cancelled());
    table.sweep(now + Duration::from_secs(61));
    assert!(
        idle.close.is_cancelled(),
        "no request within the idle timeout"
    );
    assert!(
        !busy.close.is_cancelled(),
        "a running transfer is never idle"
    );
    assert_eq!(table.open(), (0, 1));
}

#[test]
fn the_report_says_what_ran_out_in_one_line() {
    let table = Table::new(limits());
    let before = table.counters.snapshot();
    let held: Vec<Option<Conn>> = (0..5).map(|_| table.admit(ip(9))).collect();
    assert_eq!(held.iter().flatten().count(), 5);
    assert!(table.report(&before, &before, None).is_none());
    let after = table.counters.snapshot();
    let line = table.report(&before, &after, None).expect("a line");
    assert!(line.contains("silent connections closed"), "{line}");
    assert!(!line.contains('\n'));
}
