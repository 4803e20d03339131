//! A shutdown signal a client checks between steps and while it waits.

use std::time::Duration;

use tokio::sync::watch;

/// Tells a running client to stop. Dropping it without calling
/// [`ShutdownHandle::trigger`] does not stop anything.
#[derive(Debug)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    /// Asks every [`Shutdown`] made with this handle to stop.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

/// The receiving side: cheap to clone. Clients stop at the next check
/// (between requests and during every wait); a training run in progress is
/// finished first.
#[derive(Debug, Clone)]
pub struct Shutdown(Option<watch::Receiver<bool>>);

impl Shutdown {
    /// A handle and its signal.
    pub fn new() -> (ShutdownHandle, Self) {
        let (sender, receiver) = watch::channel(false);
        (ShutdownHandle(sender), Self(Some(receiver)))
    }

    /// A signal that never fires.
    pub fn never() -> Self {
        Self(None)
    }

    /// Whether shutdown was asked for.
    pub fn is_requested(&self) -> bool {
        self.0.as_ref().is_some_and(|receiver| *receiver.borrow())
    }

    /// Resolves once shutdown is asked for; never if it cannot be any more.
    pub async fn requested(&mut self) {
        match self.0.as_mut() {
            Some(receiver) => {
                if receiver.wait_for(|stop| *stop).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }

    /// Sleeps for `delay` unless shutdown comes first; returns whether it did.
    pub async fn sleep(&mut self, delay: Duration) -> bool {
        if self.is_requested() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => false,
            () = self.requested() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trigger_cuts_a_sleep_short() {
        let (handle, mut shutdown) = Shutdown::new();
        assert!(!shutdown.sleep(Duration::from_millis(1)).await);
        let mut other = shutdown.clone();
        let waiting = tokio::spawn(async move { other.sleep(Duration::from_secs(3600)).await });
        handle.trigger();
        assert!(waiting.await.unwrap());
        assert!(shutdown.is_requested() && shutdown.sleep(Duration::from_secs(3600)).await);
    }

    #[tokio::test]
    async fn never_and_dropped_handles_do_not_fire() {
        assert!(!Shutdown::never().sleep(Duration::from_millis(1)).await);
        let (handle, mut shutdown) = Shutdown::new();
        drop(handle);
        assert!(!shutdown.sleep(Duration::from_millis(1)).await);
    }
}
