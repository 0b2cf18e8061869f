//! The packet size a topology asks for (`mtu`) on the devices its packets pass, recorded
//! with the size each device had so that `down` sets it back. A device's packet size is
//! every network's on it, so a network that sets it shares that device with no other.

use crate::error::Error;
use crate::state::{networks, State};
use netctl::{Host, Object, PacketSize};

/// Puts first in `state` the packet size its topology asks for (`mtu`: MTU, and GSO no
/// larger, so that queues hold packets of that size) on each device that its nodes'
/// packets pass (see [`crate::objects::Layout::hook_devs`]), with what the device has now, which `down`
/// sets back; nothing for a device that has it already. A device's packet size is every
/// network's on it, so a network that sets it shares that device with no other.
pub(crate) fn add_packet_size(state: &mut State) -> Result<(), Error> {
    let devs = state.layout().hook_devs();
    let others: Vec<State> = networks()
        .into_iter()
        .filter(|s| s.name != state.name && devs.iter().any(|d| s.hooks(d)))
        .collect();
    for o in &others {
        let set = o.objects.iter().find_map(|x| match x {
            Object::PacketSize { dev, .. } if devs.contains(dev) => Some(dev),
            _ => None,
        });
        if let Some(dev) = set {
            return Err(Error::PacketSizeSet {
                other: o.name.clone(),
                dev: dev.clone(),
            });
        }
    }
    let Some(mtu) = state.model.mtu else {
        return Ok(());
    };
    let want = PacketSize::plain(mtu);
    let mut host = Host::open()?;
    let mut sizes = vec![];
    for dev in devs {
        let now = host.packet_size(&dev)?;
        if now == want {
            continue;
        }
        if let Some(o) = others.iter().find(|s| s.hooks(&dev)) {
            return Err(Error::PacketSizeShared {
                mtu,
                other: o.name.clone(),
                dev,
            });
        }
        sizes.push(Object::PacketSize {
            dev,
            set: want,
            restore: now,
        });
    }
    state.objects.splice(0..0, sizes);
    Ok(())
}
