import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from kdgan.nets import DiscriminatorSpec, GeneratorSpec, build_discriminator, build_generator


def make(arch, width, resolution, num_classes, channels=3):
    g = build_generator(GeneratorSpec(arch=arch, width=width, latent_dim=16, resolution=resolution,
                                      channels=channels, num_classes=num_classes))
    arch = arch.removesuffix("-subpixel")  # a student generator family, judged by the DCGAN discriminator
    d = build_discriminator(DiscriminatorSpec(arch=arch, width=width, resolution=resolution, channels=channels,
                                              num_classes=num_classes, spectral_norm=arch == "resnet",
                                              batch_norm=arch == "dcgan"))
    return g, d


def macs(module, *inputs):
    with FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() / 2


def params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("arch", ["dcgan", "resnet", "dcgan-subpixel"])
@pytest.mark.parametrize("resolution", [16, 32])
@pytest.mark.parametrize("num_classes", [0, 5])
def test_shapes(arch, resolution, num_classes):
    g, d = make(arch, 8, resolution, num_classes)
    z = torch.randn(4, 16)
    y = torch.tensor([0, 1, 2, 4]) if num_classes else None
    args = (z, y) if num_classes else (z,)
    x = g(*args)
    assert x.shape == (4, 3, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1
    logits = d(x, y) if num_classes else d(x)
    assert logits.shape == (4,)
    logits.sum().backward()  # gradients reach the generator through the discriminator
    assert all(p.grad is not None for p in g.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
@pytest.mark.parametrize("resolution", [16, 32])
def test_width_scales_macs_and_params_quadratically(arch, resolution):
    small_g, small_d = make(arch, 16, resolution, 0)
    big_g, big_d = make(arch, 64, resolution, 0)
    z = torch.randn(1, 16)
    g_ratio = macs(big_g, z) / macs(small_g, z)
    x = torch.randn(1, 3, resolution, resolution)
    d_ratio = macs(big_d, x) / macs(small_d, x)
    # 4x the width -> close to 16x the MACs (terms linear in width, the latent input and
    # the RGB ends, keep it a little below)
    assert 10 < g_ratio <= 16.5 and 10 < d_ratio <= 16.5, (g_ratio, d_ratio)
    assert 8 < params(big_g) / params(small_g) <= 16.5


def test_conditional_changes_output_per_class():
    g, d = make("dcgan", 8, 16, 3)
    g.eval()
    z = torch.randn(1, 16).repeat(3, 1)
    for m in g.modules():  # give each class its own BatchNorm scale
        if hasattr(m, "gamma"):
            torch.nn.init.normal_(m.gamma.weight, 1.0, 0.5)
    x = g(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(x[0], x[1])


def test_conditional_requires_labels():
    g, d = make("resnet", 8, 16, 3)
    with pytest.raises(ValueError, match="labels"):
        g(torch.randn(2, 16))
    with pytest.raises(ValueError, match="labels"):
        d(torch.randn(2, 3, 16, 16))


def test_feature_taps_are_stage_outputs():
    g, _ = make("dcgan", 8, 32, 0)
    names = dict(g.named_modules())
    assert {"stem", "stages.0", "stages.1"} <= set(names)
    seen = {}
    hooks = [names[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.shape[-1]))
             for n in ("stem", "stages.0", "stages.1")]
    g(torch.randn(2, 16))
    for h in hooks:
        h.remove()
    assert seen == {"stem": 4, "stages.0": 8, "stages.1": 16}


def test_subpixel_generator_is_a_shortened_dcgan():
    """The sub-pixel family keeps DCGAN's channel schedule and taps up to resolution / scale,
    its stem is the DCGAN stem computed as a matrix product, and its head upsamples by `scale`."""
    dc = build_generator(GeneratorSpec(arch="dcgan", width=8, latent_dim=16, resolution=32, channels=1))
    for scale, stages in [(4, 1), (2, 2), (8, 0)]:
        g = build_generator(GeneratorSpec(arch="dcgan-subpixel", width=8, latent_dim=16, resolution=32, channels=1,
                                          scale=scale))
        assert len(g.stages) == stages
        assert [s.conv.out_channels for s in g.stages] == [s.conv.out_channels for s in dc.stages[:stages]]
        assert g.to_image[0].out_channels == scale * scale
        assert g(torch.randn(2, 16)).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="head_scale"):
        build_generator(GeneratorSpec(arch="dcgan-subpixel", width=8, latent_dim=16, resolution=32, channels=1,
                                      scale=3))
    # default scale 4 at 32 px, width 8 (channels 32 at 4x4, 16 at 8x8), counted by hand:
    # linear stem 16 -> 32*16, transposed conv 16 px * 32 * 16 * 4x4 taps, head 64 px * 9 * 16 * 16
    g = build_generator(GeneratorSpec(arch="dcgan-subpixel", width=8, latent_dim=16, resolution=32, channels=1))
    assert macs(g, torch.randn(1, 16)) == 16 * 32 * 16 + 16 * 32 * 16 * 16 + 64 * 9 * 16 * 16


def test_subpixel_residual_head_starts_silent_and_then_learns():
    """head_residual: a nonlinear branch beside the linear head, zero at the start (the
    generator is then its linear-head self), trained like every other layer."""
    spec = dict(arch="dcgan-subpixel", width=8, latent_dim=16, resolution=32, channels=1)
    torch.manual_seed(0)
    plain = build_generator(GeneratorSpec(**spec)).eval()
    torch.manual_seed(0)
    g = build_generator(GeneratorSpec(**spec, head_residual=8)).eval()
    z = torch.randn(3, 16)
    assert torch.equal(g(z), plain(z))
    g.train()
    g(z).square().mean().backward()
    assert g.head_residual[-1].weight.grad.abs().sum() > 0
    # 8 more channels at 8x8: a 3x3 conv 16 -> 8 and a 1x1 conv 8 -> 16, counted by hand
    assert macs(g, torch.randn(1, 16)) - macs(plain, torch.randn(1, 16)) == 64 * 9 * 16 * 8 + 64 * 8 * 16
    with pytest.raises(ValueError, match="head_residual"):
        build_generator(GeneratorSpec(**spec, head_residual=8, blocks=1))
