"""FLOPs of a step, per unit, against hand arithmetic on a two-conv network (batch of 1).

The network (helpers.two_conv_net): conv(3->4, 3x3, pad 1) + BN + ReLU, conv(4->8, 3x3, pad 1) + ReLU,
then global average pooling + linear(8->10). Conventions of torch.utils.flop_counter: conv/matmul
FLOPs = 2 x multiply-accumulates, a padded 3x3 conv does Cin*3*3 MACs per output value; bias, BN, ReLU
and pooling count zero; a conv's backward is one conv for the weight gradient plus one for the input
gradient, the latter only when the input needs a gradient. Every expected number below is a literal
with its arithmetic beside it: none is computed by the code under test.
"""

from __future__ import annotations

from learndrop.method.flops import measure_step_flops

SHAPE = (3, 8, 8)


def test_full_network_step_by_hand(small_net):
    f = measure_step_flops(small_net, SHAPE)
    assert f.fwd == {
        "features.0": 13_824,  # 2 * (8*8 outputs) * (3*4 channel pairs) * (3*3 kernel) = 2 * 64 * 12 * 9
        "features.1": 36_864,  # 2 * 64 * (4*8) * 9
        "head": 160,  # linear 8 -> 10: 2 * 8 * 10 (pooling and bias count zero)
    }
    # backward: the image needs no gradient, so conv0 computes its weight gradient only
    assert f.bwd == {
        "features.0": 13_824,  # weight gradient only: the same 2 * 64 * 12 * 9 as its forward
        "features.1": 73_728,  # weight gradient + input gradient: 2 * 36,864
        "head": 320,  # weight gradient + input gradient: 2 * 160
    }
    assert f.fwd_total == 50_848  # 13,824 + 36,864 + 160
    assert f.bwd_total == 87_872  # 13,824 + 73,728 + 320


def test_flops_follow_the_input_size(small_net):
    """A 6x5 input: every conv term scales with H*W = 30; the head (after global pooling) does not."""
    f = measure_step_flops(small_net, (3, 6, 5))
    assert f.fwd == {
        "features.0": 6_480,  # 2 * (6*5) * (3*4) * 9 = 2 * 30 * 108
        "features.1": 17_280,  # 2 * 30 * (4*8) * 9 = 2 * 30 * 288
        "head": 160,  # 2 * 8 * 10, whatever the spatial size
    }
    assert f.bwd == {"features.0": 6_480, "features.1": 34_560, "head": 320}  # 1x, 2 * 17,280, 2 * 160


def test_cached_prefix_costs_nothing(small_net):
    cached = measure_step_flops(small_net, SHAPE, dropped=1, cached=True)
    # the prefix is read from the cache: no forward, no backward
    assert cached.fwd == {"features.0": 0, "features.1": 36_864, "head": 160}  # 0, 2 * 64 * 32 * 9, 2 * 8 * 10
    # conv1 now reads a tensor that needs no gradient: its weight gradient only (36,864), not 2 x
    assert cached.bwd == {"features.0": 0, "features.1": 36_864, "head": 320}
    assert cached.fwd_total == 37_024  # 36,864 + 160 (= the full 50,848 - conv0's 13,824)
    assert cached.bwd_total == 37_184  # 36,864 + 320


def test_recomputed_prefix_still_costs_its_forward(small_net):
    recomputed = measure_step_flops(small_net, SHAPE, dropped=1, cached=False)
    # conv0 runs forward under no_grad (2 * 64 * 12 * 9) and has no backward
    assert recomputed.fwd == {"features.0": 13_824, "features.1": 36_864, "head": 160}
    assert recomputed.bwd == {"features.0": 0, "features.1": 36_864, "head": 320}
    assert recomputed.fwd_total == 50_848 and recomputed.bwd_total == 37_184  # as full; 36,864 + 320


def test_measuring_leaves_the_real_model_alone(small_net):
    before = {k: v.clone() for k, v in small_net.state_dict().items()}
    measure_step_flops(small_net, SHAPE)
    after = small_net.state_dict()
    assert set(after) == set(before)
    assert all(after[k].device.type == "cpu" and after[k].equal(v) for k, v in before.items())


def test_a_grouped_convs_backward_counts_each_group_on_its_own_channels():
    """conv(8->8, 3x3, pad 1) on a 4x4 input, dense and depthwise (groups 8). torch's own backward formula
    counts the weight gradient as if every group saw every channel (the depthwise one 8x too high)."""
    from torch import nn

    from learndrop.models import UnitNetwork

    def net(groups: int) -> UnitNetwork:
        body = nn.Sequential(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=False)))
        return UnitNetwork({"body": body, "head": nn.Sequential(nn.Flatten(), nn.Linear(128, 2))}, ["body.0"])

    dense, depthwise = measure_step_flops(net(1), (8, 4, 4)), measure_step_flops(net(8), (8, 4, 4))
    assert dense.fwd["body.0"] == 18_432  # 2 * (4*4 outputs) * (8*8 channel pairs) * 9
    assert dense.bwd["body.0"] == 18_432  # the image needs no gradient: the weight gradient only, = forward
    assert depthwise.fwd["body.0"] == 2_304  # 2 * 16 * (8 channels, each with its own) * 9
    assert depthwise.bwd["body.0"] == 2_304  # its weight gradient: the same 2 * 16 * 8 * 9, not 8 x that
