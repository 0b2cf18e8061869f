//! The public handle on one network of this network namespace: bring it up, open it by
//! name, change it while it runs, read its counters and its health, take it down. Every
//! operation takes the namespace's lock and reads or writes the network's state file, so
//! handles in several processes see one network.

use crate::counters::{counters, NodeCounters};
use crate::engine::{engine_alive, engine_failure, EngineBinary};
use crate::error::Error;
use crate::packet_size::add_packet_size;
use crate::runtime::apply;
use crate::state::{load, networks, State};
use crate::updown::{down, prepare, up, UpOptions};
use netctl::probe::Backend;
use topology::LinkModel;
use topology::NetChange;

/// One network, as its state file last recorded it.
#[derive(Debug)]
pub struct Network {
    state: State,
    engine: EngineBinary,
}

impl Network {
    /// Brings network `opts.name` up from `model` (see [`UpOptions`]).
    pub fn up(model: LinkModel, opts: &UpOptions) -> Result<Network, Error> {
        Ok(Network {
            state: up(model, opts)?,
            engine: opts.engine.clone(),
        })
    }

    /// What [`Network::up`] would record, planned without changing anything (for
    /// `--dry-run`), its packet size included; `backend` skips the kernel probe when given.
    pub fn prepare(
        model: LinkModel,
        opts: &UpOptions,
        backend: Option<Backend>,
    ) -> Result<State, Error> {
        let mut state = prepare(model, opts, backend)?;
        add_packet_size(&mut state)?;
        Ok(state)
    }

    /// Network `name`, which is up.
    pub fn open(name: &str) -> Result<Network, Error> {
        Ok(Network {
            state: load(name)?,
            engine: EngineBinary::default(),
        })
    }

    /// Every network recorded in this network namespace, by name.
    pub fn list() -> Vec<Network> {
        networks()
            .into_iter()
            .map(|state| Network {
                state,
                engine: EngineBinary::default(),
            })
            .collect()
    }

    /// This network with `engine` running the delay engine that a change may need.
    pub fn with_engine(self, engine: EngineBinary) -> Network {
        Network { engine, ..self }
    }

    /// Takes network `name` down, removing exactly what its state file lists. `Ok(false)`
    /// if it was not up (taking a network down twice is harmless).
    pub fn down(name: &str) -> Result<bool, Error> {
        down(name)
    }

    /// Makes `change` to the running network.
    pub fn change(&mut self, change: &NetChange) -> Result<(), Error> {
        self.state = apply(&self.state.name, change, &self.engine)?;
        Ok(())
    }

    /// Per-node counters, from the network's class statistics.
    pub fn counters(&self) -> Result<Vec<NodeCounters>, Error> {
        counters(&self.state)
    }

    /// Why the network no longer emulates its topology: its delay engine exited (packets to
    /// the virtual prefixes then wait in the queue forever), with the engine's last words;
    /// `None` while it is healthy.
    pub fn health(&self) -> Option<String> {
        engine_failure(&self.state)
    }

    /// Whether the network's delay engine runs; `None` if it has none.
    pub fn engine_running(&self) -> Option<bool> {
        engine_alive(&self.state)
    }

    /// The network as recorded.
    pub fn state(&self) -> &State {
        &self.state
    }
}
