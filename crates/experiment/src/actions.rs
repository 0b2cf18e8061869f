//! Event actions, the same for YAML events and ProtoPeer-style scenario lines: an action
//! name, node selector terms and `key=value` parameters become a checked `Action`. The
//! process actions are this crate's; network changes and every check of what is written
//! are topology's one change parser.

use crate::model::{Action, ProcessAction};
use topology::change::{self, ChangeError, Parsed, Written};
use topology::Plan;

/// The process actions' names, as users write them, and what they are.
const PROCESS: [(&str, ProcessAction); 5] = [
    ("start", ProcessAction::Start),
    ("stop", ProcessAction::Stop),
    ("kill", ProcessAction::Kill),
    ("pause", ProcessAction::Pause),
    ("resume", ProcessAction::Resume),
];

/// Builds the action written as `written`.
pub fn build(plan: &Plan, written: &Written<'_>) -> Result<Action, Vec<ChangeError>> {
    Ok(match change::parse(&plan.link, written, &PROCESS)? {
        Parsed::Net(c) => Action::Net(c),
        Parsed::Other(what, nodes) => Action::Process(what, nodes),
    })
}
