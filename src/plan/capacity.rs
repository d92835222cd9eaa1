//! How many tasks an ECS rollout runs, decided from the configuration and
//! what ECS and Application Auto Scaling said at plan time.
//!
//! Without an autoscaling target the configured `desired_count` is the
//! count. With one, autoscaling owns the count: the rollout keeps the count
//! it finds (the configured one is not used), raised to the target's minimum
//! and never lowered. Pure: the caller reads the live values
//! (`apply::refresh::read_live`); apply suspends and restores the
//! scaling (`apply::scaling`). It does not decide anything about traffic.

use super::model::{LiveCapacity, PlannedCapacity, ScalingTarget};

/// What the new version runs beside while a rollout replaces what serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// Nothing serves yet: the new tasks are all there is.
    Nothing,
    /// A rolling update of the serving service: its old tasks and the new
    /// ones.
    InPlace,
    /// A canary or blue/green: the new version's temporary service beside
    /// the serving one, which is then updated in place while the temporary
    /// service still runs (the serving count, plus the new tasks twice).
    SideBySide,
}

/// The capacity of a rollout whose configuration asks for `configured`
/// tasks. `live` is what was read for the serving service (`None`: not
/// read). `replacement` says what the new version runs beside until it
/// takes over.
pub fn planned_capacity(
    configured: u32,
    live: Option<&LiveCapacity>,
    replacement: Replacement,
) -> PlannedCapacity {
    let live_count = live.and_then(|l| l.desired_count);
    let scaling = live.and_then(|l| l.scaling);
    let tasks = match scaling {
        Some(target) => tasks_under_autoscaling(
            live_count.unwrap_or(configured),
            target,
            live_count.is_some(),
        ),
        None => configured,
    };
    let serving = live_count.unwrap_or(tasks);
    let peak_tasks = match replacement {
        Replacement::Nothing => tasks,
        Replacement::InPlace => serving + tasks,
        Replacement::SideBySide => serving + 2 * tasks,
    };
    PlannedCapacity {
        tasks,
        configured,
        live: live_count,
        scaling,
        peak_tasks,
    }
}

/// The count under an autoscaling target: `base` (the live count, or the
/// configured one for a service that does not run yet) raised to the
/// minimum. A live count above the maximum is kept (autoscaling brings it
/// down itself); a configured count for a new service is held to the maximum.
fn tasks_under_autoscaling(base: u32, target: ScalingTarget, base_is_live: bool) -> u32 {
    let raised = base.max(target.min);
    if base_is_live {
        raised
    } else {
        raised.min(target.max.max(target.min))
    }
}

/// The plan's sentence for a capacity, e.g. "4 tasks, the count autoscaling
/// keeps (min 3, max 6; the configured 1 is not used); up to 8 at once
/// during the rollout; scaling is suspended while it runs".
pub fn describe(capacity: &PlannedCapacity) -> String {
    let tasks = |n: u32| format!("{n} task{}", if n == 1 { "" } else { "s" });
    let mut text = match capacity.scaling {
        None => format!("{} (configured)", tasks(capacity.tasks)),
        Some(target) => {
            let why = match capacity.live {
                Some(live) if live < target.min => {
                    format!("raised from {live} to the autoscaling minimum")
                }
                Some(_) => "the count autoscaling keeps".to_string(),
                None => "the configured count within autoscaling's bounds".to_string(),
            };
            let unused = if capacity.live.is_some() {
                format!("; the configured {} is not used", capacity.configured)
            } else {
                String::new()
            };
            format!(
                "{}, {why} (min {}, max {}{unused})",
                tasks(capacity.tasks),
                target.min,
                target.max
            )
        }
    };
    if capacity.peak_tasks > capacity.tasks {
        text.push_str(&format!(
            "; up to {} at once during the rollout",
            capacity.peak_tasks
        ));
    }
    if capacity.scaling.is_some() {
        text.push_str("; autoscaling is suspended while it runs and restored after");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(count: Option<u32>, target: Option<(u32, u32)>) -> LiveCapacity {
        LiveCapacity {
            desired_count: count,
            scaling: target.map(|(min, max)| ScalingTarget { min, max }),
        }
    }

    #[test]
    fn without_autoscaling_the_configured_count_is_the_count() {
        let planned = planned_capacity(2, Some(&live(Some(5), None)), Replacement::InPlace);
        assert_eq!((planned.tasks, planned.peak_tasks), (2, 7));
        assert_eq!(
            describe(&planned),
            "2 tasks (configured); up to 7 at once during the rollout"
        );
        let first = planned_capacity(1, None, Replacement::Nothing);
        assert_eq!((first.tasks, first.peak_tasks), (1, 1));
        assert_eq!(describe(&first), "1 task (configured)");
    }

    #[test]
    fn autoscaling_keeps_the_live_count_and_never_goes_below_its_minimum() {
        // The finding: min 3, max 6, 4 running, 1 configured.
        let kept = planned_capacity(1, Some(&live(Some(4), Some((3, 6)))), Replacement::InPlace);
        assert_eq!((kept.tasks, kept.peak_tasks), (4, 8));
        assert_eq!(
            describe(&kept),
            "4 tasks, the count autoscaling keeps (min 3, max 6; the configured 1 is not used); up to 8 at once during the rollout; autoscaling is suspended while it runs and restored after"
        );
        let raised = planned_capacity(1, Some(&live(Some(2), Some((3, 6)))), Replacement::InPlace);
        assert_eq!((raised.tasks, raised.peak_tasks), (3, 5));
        assert!(describe(&raised).starts_with("3 tasks, raised from 2 to the autoscaling minimum"));
        // Above the maximum (the maximum lowered by hand): not lowered by slipway.
        // A canary: the temporary service's tasks, then the serving
        // service updated in place beside it.
        let canary = planned_capacity(
            1,
            Some(&live(Some(4), Some((3, 6)))),
            Replacement::SideBySide,
        );
        assert_eq!((canary.tasks, canary.peak_tasks), (4, 12));
        let above = planned_capacity(1, Some(&live(Some(9), Some((3, 6)))), Replacement::InPlace);
        assert_eq!(above.tasks, 9);
        // A service that does not run yet: the configured count within bounds.
        for (configured, expected) in [(1, 3), (4, 4), (10, 6)] {
            let new = planned_capacity(
                configured,
                Some(&live(None, Some((3, 6)))),
                Replacement::Nothing,
            );
            assert_eq!(
                (new.tasks, new.peak_tasks),
                (expected, expected),
                "{configured}"
            );
        }
    }

    #[test]
    fn the_count_is_never_below_the_live_count_or_the_minimum_under_autoscaling() {
        for configured in 0..8 {
            for count in 0..10 {
                for min in 0..6 {
                    for max in min..8 {
                        let planned = planned_capacity(
                            configured,
                            Some(&live(Some(count), Some((min, max)))),
                            Replacement::SideBySide,
                        );
                        assert!(
                            planned.tasks >= count && planned.tasks >= min,
                            "{planned:?}"
                        );
                        assert!(planned.peak_tasks >= planned.tasks);
                    }
                }
            }
        }
    }
}
