//! turmoil tests of the registry: pause gates keep other hosts and simulated time running,
//! fail-point crashes and restarts applied by a step loop that emulates the harness driver.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::{DriverCommand, FailPoints, Hit, Registry, Selector};

fn sim<'a>() -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .rng_seed(1)
        .epoch(UNIX_EPOCH)
        .simulation_duration(Duration::from_secs(60))
        .build()
}

fn counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::SeqCst)
}

/// A host that evaluates `point` then counts, every 10 ms, forever.
fn worker(
    fp: FailPoints,
    point: &'static str,
    starts: Arc<AtomicU64>,
    work: Arc<AtomicU64>,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = turmoil::Result>>> {
    move || {
        starts.fetch_add(1, Ordering::SeqCst);
        let (fp, work) = (fp.clone(), work.clone());
        Box::pin(async move {
            loop {
                fp.eval(point).await;
                work.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }
}

/// Steps until `done()` or `max` steps; returns whether `done()` held.
fn step_until(
    sim: &mut turmoil::Sim<'_>,
    max: usize,
    mut done: impl FnMut() -> bool,
) -> turmoil::Result<bool> {
    for _ in 0..max {
        if done() {
            return Ok(true);
        }
        sim.step()?;
    }
    Ok(done())
}

#[test]
fn pause_on_one_host_leaves_other_hosts_and_time_running() -> turmoil::Result {
    let reg = Registry::new(1);
    reg.configure(Selector::Node("n1".into()), "work.pause", "pause")?;
    let mut sim = sim();
    let n1_done = Arc::new(AtomicBool::new(false));
    let (fp, done) = (reg.handle("n1"), n1_done.clone());
    sim.host("n1", move || {
        let (fp, done) = (fp.clone(), done.clone());
        async move {
            assert_eq!(fp.eval("work.pause").await, Hit::Pass);
            done.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let n2_work = counter();
    sim.host(
        "n2",
        worker(reg.handle("n2"), "work.pause", counter(), n2_work.clone()),
    );

    assert!(step_until(&mut sim, 100, || reg.has_reached(
        "n1",
        "work.pause",
        1
    ))?);
    let (work0, t0) = (get(&n2_work), sim.elapsed());
    for _ in 0..200 {
        sim.step()?;
    }
    assert_eq!(sim.elapsed() - t0, Duration::from_millis(200));
    assert!(get(&n2_work) - work0 >= 15, "n2 kept working");
    assert!(!n1_done.load(Ordering::SeqCst), "n1 is still paused");
    assert_eq!(reg.paused("n1", "work.pause"), 1);
    assert_eq!(reg.fired("n2", "work.pause"), 0);

    reg.open_gate(Selector::Node("n1".into()), "work.pause");
    assert!(step_until(&mut sim, 5, || n1_done.load(Ordering::SeqCst))?);
    assert_eq!(reg.paused("n1", "work.pause"), 0);
    let log = reg.fired_log();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].node.as_str(), log[0].action.as_str()),
        ("n1", "pause")
    );
    Ok(())
}

#[test]
fn a_client_waits_for_the_hit_then_opens_the_gate() -> turmoil::Result {
    let reg = Registry::new(1);
    reg.configure(Selector::All, "sync.metadata.pause", "pause")?;
    let mut sim = sim();
    let resumed = counter();
    let (fp, r) = (reg.handle("n1"), resumed.clone());
    sim.host("n1", move || {
        let (fp, r) = (fp.clone(), r.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            fp.eval("sync.metadata.pause").await;
            r.store(turmoil::elapsed().as_millis() as u64, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let (reg2, r) = (reg.clone(), resumed.clone());
    sim.client("test", async move {
        reg2.wait_reached("n1", "sync.metadata.pause", 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(get(&r), 0, "still paused");
        reg2.open_gate(Selector::All, "sync.metadata.pause");
        while get(&r) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    });
    sim.run()?;
    assert!(get(&resumed) >= 750, "resumed at {} ms", get(&resumed));
    assert_eq!(
        reg.fired_log()[0].at,
        Duration::from_millis(250),
        "the ledger records simulated time"
    );
    Ok(())
}

#[test]
fn crash_point_is_applied_by_the_step_loop_and_the_host_restarts() -> turmoil::Result {
    let reg = Registry::new(1);
    reg.configure(Selector::Node("n1".into()), "db.put.before", "1*crash")?;
    let mut sim = sim();
    let (starts, work) = (counter(), counter());
    sim.host(
        "n1",
        worker(
            reg.handle("n1"),
            "db.put.before",
            starts.clone(),
            work.clone(),
        ),
    );
    let mut crashed_at = None;
    for _ in 0..300 {
        sim.step()?;
        for cmd in reg.take_commands() {
            let DriverCommand::Crash { node } = cmd else {
                panic!("unexpected {cmd:?}");
            };
            sim.crash(node.as_str());
            crashed_at = Some(sim.elapsed());
            assert_eq!(get(&work), 0, "the hitting task never resumed");
            assert!(!sim.is_host_running("n1"));
        }
        if crashed_at.is_some_and(|t| sim.elapsed() == t + Duration::from_millis(100)) {
            sim.bounce("n1");
        }
    }
    assert!(crashed_at.is_some(), "the crash command was queued");
    assert_eq!(get(&starts), 2, "the factory ran again after the bounce");
    assert!(get(&work) >= 10, "the count is spent: the point passes now");
    assert_eq!(reg.fired("n1", "db.put.before"), 1);
    Ok(())
}

#[test]
fn restart_point_is_bounced_after_its_delay() -> turmoil::Result {
    let reg = Registry::new(1);
    reg.configure(Selector::All, "events.write.after", "1*restart(500)")?;
    let mut sim = sim();
    let (starts, work) = (counter(), counter());
    let fp = reg.handle("n1");
    sim.host(
        "n1",
        worker(fp, "events.write.after", starts.clone(), work.clone()),
    );
    let mut due: Vec<(Duration, String)> = Vec::new();
    let (mut crashed_at, mut bounced_at) = (None, None);
    for _ in 0..1000 {
        sim.step()?;
        for cmd in reg.take_commands() {
            let DriverCommand::Restart { node, after_ms } = cmd else {
                panic!("unexpected {cmd:?}");
            };
            sim.crash(node.as_str());
            crashed_at = Some(sim.elapsed());
            due.push((sim.elapsed() + Duration::from_millis(after_ms), node));
        }
        if crashed_at.is_some() && bounced_at.is_none() {
            assert!(!sim.is_host_running("n1"), "down until the delay passed");
        }
        let now = sim.elapsed();
        let (ready, later): (Vec<_>, Vec<_>) = due.drain(..).partition(|(at, _)| *at <= now);
        due = later;
        for (_, node) in ready {
            sim.bounce(node.as_str());
            bounced_at = Some(now);
        }
    }
    let (crashed, bounced) = (crashed_at.expect("crashed"), bounced_at.expect("bounced"));
    assert_eq!(bounced - crashed, Duration::from_millis(500));
    assert_eq!(get(&starts), 2);
    assert!(get(&work) > 0);
    Ok(())
}

#[test]
fn probabilities_replay_identically_in_a_simulation() -> turmoil::Result {
    let run = || -> turmoil::Result<Vec<String>> {
        let reg = Registry::new(42);
        reg.configure(Selector::Pattern("n*".into()), "p", "30%return")?;
        let mut sim = sim();
        for node in ["n1", "n2", "n3"] {
            sim.host(node, worker(reg.handle(node), "p", counter(), counter()));
        }
        for _ in 0..500 {
            sim.step()?;
        }
        let log = reg.fired_log();
        Ok(log
            .iter()
            .map(|e| format!("{:?} {} {}", e.at, e.node, e.action))
            .collect())
    };
    let (a, b) = (run()?, run()?);
    assert!(a.len() > 20, "{}", a.len());
    assert_eq!(a, b);
    Ok(())
}

#[test]
fn a_disabled_handle_ignores_the_fail_crate_inside_a_simulation() -> turmoil::Result {
    fail::cfg("faults.test.in_sim", "return").map_err(|e| e.to_string())?;
    let mut sim = sim();
    sim.client("c", async {
        let fp = FailPoints::disabled("c");
        assert_eq!(fp.eval("faults.test.in_sim").await, Hit::Pass);
        Ok(())
    });
    let out = sim.run();
    fail::remove("faults.test.in_sim");
    out
}
