//! Operator requests (planned failover, reclone) from the shells into the loop, and the
//! loop's answer.

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Categorized, Category};
use crate::failover::{Event, EventReason, GroupStatus, PlannedPhase, Request};

/// Whether the engine took the request on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Accepted { message: String },
    Rejected { reason: String },
}

/// The loop could not answer (it stopped).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the failover loop is not running")]
    LoopStopped,
}

impl Categorized for RequestError {
    fn category(&self) -> Category {
        Category::Unavailable
    }
}

pub(super) struct Envelope {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// The shells' side of a running [`super::FailoverLoop`]: submit requests, read the status.
#[derive(Clone)]
pub struct ControlHandle {
    pub(super) requests: mpsc::Sender<Envelope>,
    pub(super) status: watch::Receiver<Option<GroupStatus>>,
}

impl ControlHandle {
    /// Hands `request` to the next poll (which runs at once) and waits for its verdict.
    pub async fn submit(&self, request: Request) -> Result<Reply, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Envelope { request, reply })
            .await
            .map_err(|_| RequestError::LoopStopped)?;
        answer.await.map_err(|_| RequestError::LoopStopped)
    }

    /// The status published by the last poll (`None` before the first one).
    pub fn status(&self) -> Option<GroupStatus> {
        self.status.borrow().clone()
    }

    /// A receiver that wakes on every published status.
    pub fn subscribe(&self) -> watch::Receiver<Option<GroupStatus>> {
        self.status.clone()
    }
}

/// The verdict on `request` from the events and status of the decision it was part of.
pub(super) fn verdict(request: &Request, events: &[Event], status: &GroupStatus) -> Reply {
    let about = |site: &str, reasons: &[EventReason]| {
        events
            .iter()
            .find(|e| e.site.as_deref() == Some(site) && reasons.contains(&e.reason))
    };
    match request {
        Request::PlannedFailover { target, .. } => {
            if let Some(e) = about(target, &[EventReason::PlannedFailoverRejected]) {
                return Reply::Rejected {
                    reason: e.message.clone(),
                };
            }
            let accepted = [
                EventReason::PlannedFailoverStarted,
                EventReason::PlannedFailoverSkipped,
                EventReason::PlannedFailoverDeferred,
            ];
            if let Some(e) = about(target, &accepted) {
                return Reply::Accepted {
                    message: e.message.clone(),
                };
            }
            match &status.planned_failover {
                Some(p) if p.target == *target && p.phase != PlannedPhase::Failed => {
                    Reply::Accepted {
                        message: p.message.clone(),
                    }
                }
                Some(p) if p.target == *target => Reply::Rejected {
                    reason: p.message.clone(),
                },
                _ => Reply::Rejected {
                    reason: "the request was not taken up".to_owned(),
                },
            }
        }
        Request::Reclone { site } => {
            if let Some(e) = about(site, &[EventReason::RecloneRejected]) {
                Reply::Rejected {
                    reason: e.message.clone(),
                }
            } else if let Some(e) = about(site, &[EventReason::RecloneRequested]) {
                Reply::Accepted {
                    message: e.message.clone(),
                }
            } else {
                Reply::Rejected {
                    reason: "the request was not taken up".to_owned(),
                }
            }
        }
        Request::CancelPlanned => Reply::Accepted {
            message: "cancel requested".to_owned(),
        },
    }
}
