//! The proxy's side of persistence: every dialog change the tracker reports goes to the
//! persister, expired dialogs are taken out of the database before their BYEs, the
//! write-back runs on the storage thread, and every failure is counted and logged (at most
//! once per interval) with what was not written — never a crash, never a silent loss.

use std::fmt::Display;
use std::time::Duration;

use sip_dialog::{DbMode, DialogRecord, Expiry, Outcome, Tracker};
use sip_location::{LocationStore, Mode};

use super::{Now, Proxy};

impl Proxy {
    /// How often [`flush_storage`](Self::flush_storage) has work: the write-back interval
    /// when the location is written back or dialog changes are written (or retried) by
    /// period; `None` when nothing is.
    pub fn storage_flush_every(&self) -> Option<Duration> {
        let p = &self.local.persist;
        let dialogs = p
            .dialogs
            .as_ref()
            .is_some_and(|d| matches!(d.mode(), DbMode::Realtime | DbMode::Delayed));
        (self.local.location.mode() == Mode::WriteBack || dialogs).then_some(p.flush)
    }

    /// The periodic write: registrations changed since the last one (write-back), dialog
    /// changes of the period (delayed) or failed earlier (realtime). Failures keep what was
    /// not written for the next time.
    pub fn flush_storage(&self, now: Now) {
        if let Err(e) = self.local.location.flush(now.wall) {
            let dirty = self.local.location.dirty();
            self.store_failure(
                now,
                &format!(
                    "write-back: {dirty} registrations (AORs) not written, kept for the next flush"
                ),
                &e,
            );
        }
        if let Some(p) = &self.local.persist.dialogs {
            if let Err(e) = p.flush_due(now.wall) {
                self.store_failure(now, "dialogs not written", &e);
            }
        }
    }

    /// At shutdown, after the last transaction: writes back every registration, and the
    /// dialogs as their `db_mode` says (delayed: what is queued; at shutdown: every live
    /// confirmed dialog). An error says what could not be written.
    pub fn close_storage(&self, now: Now) -> Result<(), String> {
        let mut errors = Vec::new();
        match self.local.location.flush(now.wall) {
            Ok(n) if n > 0 => tracing::info!(aors = n, "registrations written back"),
            Ok(_) => {}
            Err(e) => errors.push(format!(
                "{} registrations (AORs) not written at shutdown: {e}",
                self.local.location.dirty()
            )),
        }
        if let Some(p) = &self.local.persist.dialogs {
            let live = self
                .local
                .dialogs
                .as_ref()
                .map(Tracker::snapshot)
                .unwrap_or_default();
            match p.shutdown(&live) {
                Ok(n) if n > 0 => tracing::info!(dialogs = n, "dialogs written"),
                Ok(_) => {}
                Err(e) => errors.push(format!("dialogs not written at shutdown: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Hands the change a tracker call reported to the persister.
    pub(crate) fn persist_dialog(&self, now: Now, out: &Outcome) {
        let Some(p) = &self.local.persist.dialogs else {
            return;
        };
        if let Some(change) = out.tracked().and_then(|t| t.change.as_ref()) {
            if let Err(e) = p.record(change, now.wall) {
                self.store_failure(now, "dialog change not written", &e);
            }
        }
    }

    /// A confirmed dialog's lifetime ended: the persister takes it out of the database and
    /// says whether this node sends the BYEs (a store error: send them anyway, the dialog
    /// is gone from memory).
    pub(crate) fn expiry_sends_bye(&self, now: Now, t: &Tracker, rec: &DialogRecord) -> bool {
        let Some(p) = &self.local.persist.dialogs else {
            return true;
        };
        match p.expire(rec, now.wall) {
            Ok(Expiry::SendBye) => true,
            Ok(Expiry::Skip) => false,
            Ok(Expiry::Refreshed(r)) => {
                if let Err(e) = t.insert_record(r, now.wall) {
                    tracing::warn!(dialog = %rec.id, error = %e, "refreshed dialog not tracked again");
                }
                false
            }
            Err(e) => {
                self.store_failure(now, "expired dialog not removed from the database", &e);
                true
            }
        }
    }

    /// Counts a storage failure and logs it (at most once per interval, with how many were
    /// not logged in between).
    pub(crate) fn store_failure(&self, now: Now, what: &str, error: &dyn Display) {
        self.stats.store_write_failures.inc();
        if let Some(quiet) = self.local.persist.failures.due(now.mono) {
            tracing::error!(
                error = %error,
                failures_since_last_report = quiet,
                total_failures = self.stats.store_write_failures.get(),
                "storage: {what}"
            );
        }
    }

    /// Registrations waiting for the next write-back (AORs).
    pub fn storage_pending(&self) -> usize {
        self.local.location.dirty()
    }
}
