//! Escalation paths must end. An unanswered request escalates from its gate's escalation group
//! to that team's backup team, and so on; when the path is exhausted it is rejected (a timeout
//! never approves). A cycle among backup teams would make the path endless, so the request would
//! neither be decided nor rejected: cycles are refused when gates or teams are saved.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Escalation among teams loops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CycleError {
    /// The teams of the loop in escalation order, the first repeated at the end:
    /// `["finance", "ops", "finance"]`.
    pub cycle: Vec<String>,
    /// The gates whose escalation group leads into the loop, sorted; empty when none does yet.
    pub gates: Vec<String>,
}

impl fmt::Display for CycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "escalation never ends: {} is a cycle",
            self.cycle.join(" -> ")
        )?;
        if !self.gates.is_empty() {
            write!(f, " (reached from gate {})", self.gates.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Unseen,
    OnPath,
    Done,
}

/// Refuses escalation that loops. `gate_escalations` are `(gate key, team it escalates to)`;
/// `team_escalations` are `(team, its backup team)`. Gates are kept apart from teams, so a gate
/// and a team that share a name are not confused. The reported cycle is the first found when
/// teams are visited by name, so the same configuration always gives the same message.
pub fn check_escalation_cycles(
    gate_escalations: &[(String, String)],
    team_escalations: &[(String, String)],
) -> Result<(), CycleError> {
    let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in team_escalations {
        next.entry(from).or_default().insert(to);
        next.entry(to).or_default();
    }
    let Some(cycle) = find_cycle(&next) else {
        return Ok(());
    };
    let in_cycle: BTreeSet<&str> = cycle.iter().copied().collect();
    let gates: BTreeSet<&str> = gate_escalations
        .iter()
        .filter(|(_, team)| reaches(&next, team, &in_cycle))
        .map(|(gate, _)| gate.as_str())
        .collect();
    Err(CycleError {
        cycle: cycle.into_iter().map(str::to_owned).collect(),
        gates: gates.into_iter().map(str::to_owned).collect(),
    })
}

/// A depth-first search without recursion (a long chain of backups must not exhaust the stack).
fn find_cycle<'a>(next: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Option<Vec<&'a str>> {
    let mut mark: BTreeMap<&str, Mark> = next.keys().map(|k| (*k, Mark::Unseen)).collect();
    for &start in next.keys() {
        if mark[start] != Mark::Unseen {
            continue;
        }
        mark.insert(start, Mark::OnPath);
        // Each frame: a team on the current path, and its backups still to visit.
        let mut path: Vec<(&str, std::collections::btree_set::Iter<'_, &str>)> =
            vec![(start, next[start].iter())];
        while let Some((team, rest)) = path.last_mut() {
            let team = *team;
            match rest.next() {
                None => {
                    mark.insert(team, Mark::Done);
                    path.pop();
                }
                Some(&to) => match mark[to] {
                    Mark::Unseen => {
                        mark.insert(to, Mark::OnPath);
                        path.push((to, next[to].iter()));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|(t, _)| *t == to).unwrap_or(0);
                        let mut cycle: Vec<&str> = path[from..].iter().map(|(t, _)| *t).collect();
                        cycle.push(to);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                },
            }
        }
    }
    None
}

fn reaches(next: &BTreeMap<&str, BTreeSet<&str>>, start: &str, targets: &BTreeSet<&str>) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(team) = todo.pop() {
        if targets.contains(team) {
            return true;
        }
        if seen.insert(team) {
            todo.extend(next.get(team).into_iter().flatten().copied());
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn edges(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn chains_and_diamonds_end() {
        let gates = edges(&[("refunds", "finance"), ("vendors", "ops")]);
        let teams = edges(&[
            ("finance", "ops"),
            ("finance", "legal"),
            ("ops", "execs"),
            ("legal", "execs"),
        ]);
        assert_eq!(check_escalation_cycles(&gates, &teams), Ok(()));
        assert_eq!(check_escalation_cycles(&[], &[]), Ok(()));
    }

    #[test]
    fn a_loop_is_refused_with_its_path_and_the_gates_that_reach_it() {
        let gates = edges(&[
            ("refunds", "finance"),
            ("vendors", "legal"),
            ("email", "ops"),
        ]);
        let teams = edges(&[("finance", "ops"), ("ops", "finance"), ("legal", "execs")]);
        let err = check_escalation_cycles(&gates, &teams).unwrap_err();
        assert_eq!(err.cycle, vec!["finance", "ops", "finance"]);
        assert_eq!(err.gates, vec!["email", "refunds"]);
        assert_eq!(
            err.to_string(),
            "escalation never ends: finance -> ops -> finance is a cycle (reached from gate email, refunds)"
        );
    }

    #[test]
    fn a_team_that_backs_itself_up_is_a_loop_even_with_no_gate_using_it() {
        let err = check_escalation_cycles(&[], &edges(&[("ops", "ops")])).unwrap_err();
        assert_eq!(err.cycle, vec!["ops", "ops"]);
        assert!(err.gates.is_empty());
        assert_eq!(
            err.to_string(),
            "escalation never ends: ops -> ops is a cycle"
        );
    }

    #[test]
    fn a_gate_named_like_a_team_is_not_part_of_the_team_graph() {
        // Gate "ops" escalates to team "finance", and team "finance" backs up to team "ops":
        // no loop, because the gate is not the team.
        let gates = edges(&[("ops", "finance")]);
        let teams = edges(&[("finance", "ops")]);
        assert_eq!(check_escalation_cycles(&gates, &teams), Ok(()));
    }

    #[test]
    fn a_long_chain_does_not_exhaust_the_stack() {
        let names: Vec<String> = (0..50_000).map(|i| format!("t{i}")).collect();
        let mut teams: Vec<(String, String)> = names
            .windows(2)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect();
        assert_eq!(check_escalation_cycles(&[], &teams), Ok(()));
        teams.push((names[49_999].clone(), names[0].clone()));
        assert_eq!(
            check_escalation_cycles(&[], &teams)
                .unwrap_err()
                .cycle
                .len(),
            50_001
        );
    }

    /// Kahn's algorithm: a graph is acyclic exactly when repeatedly removing teams nobody
    /// escalates to removes them all.
    fn acyclic(teams: &[(String, String)]) -> bool {
        let mut left: BTreeSet<(String, String)> = teams.iter().cloned().collect();
        let mut nodes: BTreeSet<String> = teams
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        loop {
            let Some(free) = nodes
                .iter()
                .find(|n| !left.iter().any(|(_, to)| to == *n))
                .cloned()
            else {
                return nodes.is_empty();
            };
            nodes.remove(&free);
            left.retain(|(from, _)| *from != free);
        }
    }

    proptest! {
        #[test]
        fn refuses_exactly_the_graphs_with_a_cycle_and_names_a_real_one(
            raw in prop::collection::vec((0u8..7, 0u8..7), 0..12),
            gate_teams in prop::collection::vec(0u8..7, 0..4),
        ) {
            let teams: Vec<(String, String)> =
                raw.iter().map(|(a, b)| (format!("t{a}"), format!("t{b}"))).collect();
            let gates: Vec<(String, String)> =
                gate_teams.iter().enumerate().map(|(i, t)| (format!("g{i}"), format!("t{t}"))).collect();
            match check_escalation_cycles(&gates, &teams) {
                Ok(()) => prop_assert!(acyclic(&teams)),
                Err(e) => {
                    prop_assert!(!acyclic(&teams));
                    prop_assert!(e.cycle.len() >= 2);
                    prop_assert_eq!(e.cycle.first(), e.cycle.last());
                    for w in e.cycle.windows(2) {
                        prop_assert!(teams.contains(&(w[0].clone(), w[1].clone())));
                    }
                    for g in &e.gates {
                        prop_assert!(gates.iter().any(|(k, _)| k == g));
                    }
                }
            }
        }
    }
}
