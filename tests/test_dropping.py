"""Dropping a prefix: out of the optimizer, bit-identical afterwards, BN in eval; the activation cache."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from learndrop.method.cache import ActivationCache
from learndrop.method.dropping import freeze_units, param_groups, set_train_mode


def _steps(model, opt, start, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(8, 3, 8, 8, generator=g)
        y = torch.randint(0, 10, (8,), generator=g)
        with torch.no_grad():
            h = model.forward_units(x, 0, start)
        loss = F.cross_entropy(model.forward_from(h, start), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def test_dropped_unit_leaves_optimizer_and_stays_bit_identical(small_net):
    opt = torch.optim.SGD(param_groups(small_net), lr=0.1, momentum=0.9, weight_decay=5e-4)
    _steps(small_net, opt, start=0)  # momentum and state exist for every unit
    assert [g["name"] for g in opt.param_groups] == ["features.0", "features.1", "head"]
    freeze_units(small_net, opt, ["features.0"])
    set_train_mode(small_net, dropped=1)
    assert [g["name"] for g in opt.param_groups] == ["features.1", "head"]
    dropped_params = list(small_net.unit(0).parameters())
    assert all(not p.requires_grad and p not in opt.state for p in dropped_params)
    frozen = {k: v.clone() for k, v in small_net.unit(0).state_dict().items()}  # incl. BN running stats
    rest = [p.detach().clone() for p in small_net.unit(1).parameters()]
    _steps(small_net, opt, start=1, seed=1)
    assert all(torch.equal(v, small_net.unit(0).state_dict()[k]) for k, v in frozen.items())
    assert any(not torch.equal(a, b) for a, b in zip(rest, small_net.unit(1).parameters()))


def test_set_train_mode_keeps_prefix_batchnorm_in_eval(small_net):
    set_train_mode(small_net, dropped=1)
    assert not small_net.unit(0).training and small_net.unit(1).training and small_net.head_module().training


class _Images:
    def __init__(self, x):
        self.x = x

    def get(self, idx):
        return self.x[idx], None


def test_cache_feeds_the_suffix_what_the_prefix_computes(small_net):
    x = torch.randn(20, 3, 8, 8)
    set_train_mode(small_net, dropped=1)
    cache = ActivationCache(20, torch.float32)
    assert cache.add(small_net, _Images(x), torch.arange(20), units=1, batch_size=6) == 20
    idx = torch.tensor([3, 17, 0, 9])
    with torch.no_grad():
        recomputed = small_net.forward_units(x[idx], 0, 1)
    assert torch.equal(cache.batch(idx), recomputed)
    assert cache.batch(idx).is_contiguous(memory_format=torch.channels_last)
    assert cache.nbytes == 20 * 4 * 8 * 8 * 4  # N * C*H*W * 4 bytes


def test_cache_extends_from_the_cached_rows(small_net):
    x = torch.randn(10, 3, 8, 8)
    set_train_mode(small_net, dropped=2)
    cache = ActivationCache(10, torch.float32)
    cache.add(small_net, _Images(x), torch.arange(10), units=1, batch_size=4)
    assert cache.extend(small_net, units=2, batch_size=4) == 10 and cache.units == 2
    with torch.no_grad():
        direct = small_net.forward_units(x, 0, 2)
    assert torch.allclose(cache.batch(torch.arange(10)), direct)


def test_cache_grows_by_new_rows_only(small_net):
    x = torch.randn(12, 3, 8, 8)
    set_train_mode(small_net, dropped=1)
    cache = ActivationCache(12, torch.float32)
    assert cache.add(small_net, _Images(x), torch.arange(0, 6), units=1, batch_size=4) == 6
    first = cache.batch(torch.arange(6)).clone()
    assert cache.add(small_net, _Images(x), torch.arange(0, 12), units=1, batch_size=4) == 6  # rows 6..11 only
    assert cache.rows == 12 and torch.equal(cache.batch(torch.arange(6)), first)
    assert cache.covers(1, torch.arange(12)) and not cache.covers(2, torch.arange(12))


def test_float16_cache_is_half_the_size(small_net):
    x = torch.randn(10, 3, 8, 8)
    set_train_mode(small_net, dropped=1)
    half = ActivationCache(10, torch.float16)
    half.add(small_net, _Images(x), torch.arange(10), units=1, batch_size=4)
    assert half.nbytes == 10 * 4 * 8 * 8 * 2
    with torch.no_grad():
        assert torch.allclose(half.batch(torch.arange(10)), small_net.forward_units(x, 0, 1), atol=1e-2)


def test_augmented_views_are_exact_prefix_outputs_of_the_transformed_images(small_net):
    from learndrop.method.cache import apply_transform, augmented_views

    x = torch.randn(6, 3, 8, 8)
    set_train_mode(small_net, dropped=1)
    views = augmented_views(4, flip=True)
    assert [len(v) for v in views] == [18, 10, 2]  # 3x3 crops x mirrors, centre + corners x mirrors, mirrors
    assert augmented_views(4, flip=False)[-1] == [(0, 0, False)]  # digits: no mirror images
    cache = ActivationCache(6, torch.float32, views[1])
    cache.add(small_net, _Images(x), torch.arange(6), units=1, batch_size=4)
    assert cache.features.shape == (6, 10, 8, 8, 4) and cache.views == 10
    pick = torch.tensor([0, 3, 5, 7, 9, 1])
    with torch.no_grad():
        expected = torch.stack([small_net.forward_units(apply_transform(x[i:i + 1], views[1][v]), 0, 1)[0]
                                for i, v in enumerate(pick.tolist())])
    assert torch.allclose(cache.batch(torch.arange(6), pick), expected, atol=1e-6)
    # a shift is the crop of the zero-padded image: the content moves, zeros come in at the edge
    shifted = apply_transform(x, (0, 2, False))
    assert torch.equal(shifted[..., :-2], x[..., 2:]) and (shifted[..., -2:] == 0).all()
    assert torch.equal(apply_transform(x, (0, 0, True)), x.flip(3))
