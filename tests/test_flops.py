"""FLOPs of a step, per unit, against hand arithmetic on a two-conv network (8x8 input, batch of 1).

Conventions of torch.utils.flop_counter: conv/matmul FLOPs = 2 x multiply-accumulates; BN, ReLU and
pooling count zero; a conv's backward is one conv for the weight gradient plus one for the input
gradient, the latter only when the input needs a gradient.
"""

from __future__ import annotations

from learndrop.method.flops import measure_step_flops

SHAPE = (3, 8, 8)
CONV0 = 2 * 8 * 8 * 3 * 4 * 9  # 2 * H*W * Cin*Cout * 3*3 = 13,824
CONV1 = 2 * 8 * 8 * 4 * 8 * 9  # = 36,864
HEAD = 2 * 8 * 10  # linear 8 -> 10 = 160


def test_full_network_step_by_hand(small_net):
    f = measure_step_flops(small_net, SHAPE)
    assert f.fwd == {"features.0": 13_824, "features.1": 36_864, "head": 160}
    assert (CONV0, CONV1, HEAD) == (13_824, 36_864, 160)
    # backward: the image needs no gradient, so conv0 computes its weight gradient only
    assert f.bwd == {"features.0": CONV0, "features.1": 2 * CONV1, "head": 2 * HEAD}
    assert f.fwd_total == 50_848 and f.bwd_total == 13_824 + 73_728 + 320


def test_cached_prefix_costs_nothing(small_net):
    full = measure_step_flops(small_net, SHAPE)
    cached = measure_step_flops(small_net, SHAPE, dropped=1, cached=True)
    # forward falls by exactly the prefix's share: 50,848 - 13,824 = 37,024
    assert cached.fwd_total == full.fwd_total - full.fwd["features.0"] == 37_024
    # backward falls too: no conv0 weight gradient, and conv1 no longer needs an input gradient
    assert cached.bwd == {"features.0": 0, "features.1": CONV1, "head": 2 * HEAD}
    assert cached.bwd_total == 36_864 + 320 < full.bwd_total


def test_recomputed_prefix_still_costs_its_forward(small_net):
    recomputed = measure_step_flops(small_net, SHAPE, dropped=1, cached=False)
    assert recomputed.fwd["features.0"] == CONV0 and recomputed.bwd["features.0"] == 0
    assert recomputed.bwd_total == CONV1 + 2 * HEAD


def test_measuring_leaves_the_real_model_alone(small_net):
    before = {k: v.clone() for k, v in small_net.state_dict().items()}
    measure_step_flops(small_net, SHAPE)
    after = small_net.state_dict()
    assert all(after[k].device.type == "cpu" and after[k].equal(v) for k, v in before.items())
