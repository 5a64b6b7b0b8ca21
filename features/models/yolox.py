"""YOLOX, as small as MegadetectorLite needs: the network that loads its state dict with ``strict=True``.

MegadetectorLite (zamba's frame selector) is a one-class YOLOX-tiny: depth 0.33, width 0.375, SiLU,
ordinary (not depthwise) convolutions, BatchNorm with eps 1e-3, a decoupled head with strides
8/16/32. Megvii's YOLOX (Apache-2.0; the PyPI fork ``pixeltable-yolox`` 0.4.3) builds it from a
handful of blocks; this module rebuilds those blocks under the same attribute names, so the
checkpoint's 462 tensors (``backbone.backbone.stem.conv.conv.weight`` ...) load unchanged, and
nothing else of that package (training, datasets, its GUI OpenCV) is needed.

In eval mode :class:`Yolox` returns, per image, one row per anchor point
(``(H/8)(W/8) + (H/16)(W/16) + (H/32)(W/32)`` rows): ``cx, cy, w, h`` in input pixels, the
objectness and the per-class probabilities (both after a sigmoid), exactly what YOLOX's
``decode_in_inference`` gives. Input: float RGB 0-255, not normalised, sides multiples of 32.

:func:`fuse_conv_bn` folds every BatchNorm into the convolution before it (eval only); outputs
stay equal to float rounding and CPU inference gets ~30% faster.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Yolox", "build_yolox_tiny", "fuse_conv_bn", "BN_EPS"]

#: YOLOX sets every BatchNorm's eps to 1e-3 (``init_yolo``); PyTorch's default 1e-5 shifts the outputs.
BN_EPS = 1e-3


class BaseConv(nn.Module):
    """Conv2d (no bias, "same" padding) -> BatchNorm -> SiLU. After fusion: Conv2d (bias) -> SiLU."""

    def __init__(self, in_channels: int, out_channels: int, ksize: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, ksize, stride, padding=(ksize - 1) // 2, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 then 3x3 convolution, with a residual connection when ``shortcut``."""

    def __init__(self, channels: int, shortcut: bool):
        super().__init__()
        self.conv1 = BaseConv(channels, channels, 1)
        self.conv2 = BaseConv(channels, channels, 3)
        self.use_add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CspLayer(nn.Module):
    """CSP block (YOLOv5's C3): two 1x1 branches, ``n`` bottlenecks on one, concatenated, 1x1 out."""

    def __init__(self, in_channels: int, out_channels: int, n: int, shortcut: bool = True):
        super().__init__()
        hidden = int(out_channels * 0.5)
        self.conv1 = BaseConv(in_channels, hidden, 1)
        self.conv2 = BaseConv(in_channels, hidden, 1)
        self.conv3 = BaseConv(2 * hidden, out_channels, 1)
        self.m = nn.Sequential(*[Bottleneck(hidden, shortcut) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), dim=1))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: max pools of 5, 9 and 13 pixels beside the input, then 1x1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes=(5, 9, 13)):
        super().__init__()
        hidden = in_channels // 2
        self.conv1 = BaseConv(in_channels, hidden, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes])
        self.conv2 = BaseConv(hidden * (len(kernel_sizes) + 1), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.m], dim=1))


class Focus(nn.Module):
    """Space-to-depth (each 2x2 patch into channels, YOLOX's order), then a convolution."""

    def __init__(self, in_channels: int, out_channels: int, ksize: int = 3):
        super().__init__()
        self.conv = BaseConv(in_channels * 4, out_channels, ksize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), dim=1)
        return self.conv(x)


class CspDarknet(nn.Module):
    """The backbone: a Focus stem and four stages; returns the stride 8, 16 and 32 outputs."""

    def __init__(self, depth: float, width: float):
        super().__init__()
        base, n = int(width * 64), max(round(depth * 3), 1)
        self.stem = Focus(3, base, ksize=3)
        self.dark2 = nn.Sequential(BaseConv(base, base * 2, 3, 2), CspLayer(base * 2, base * 2, n))
        self.dark3 = nn.Sequential(BaseConv(base * 2, base * 4, 3, 2), CspLayer(base * 4, base * 4, n * 3))
        self.dark4 = nn.Sequential(BaseConv(base * 4, base * 8, 3, 2), CspLayer(base * 8, base * 8, n * 3))
        self.dark5 = nn.Sequential(
            BaseConv(base * 8, base * 16, 3, 2),
            SPPBottleneck(base * 16, base * 16),
            CspLayer(base * 16, base * 16, n, shortcut=False),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dark3 = self.dark3(self.dark2(self.stem(x)))
        dark4 = self.dark4(dark3)
        return dark3, dark4, self.dark5(dark4)


class YoloPafpn(nn.Module):
    """Backbone plus the path-aggregation neck (top-down then bottom-up)."""

    def __init__(self, depth: float, width: float, in_channels=(256, 512, 1024)):
        super().__init__()
        c3, c4, c5 = (int(c * width) for c in in_channels)
        n = round(3 * depth)
        self.backbone = CspDarknet(depth, width)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = BaseConv(c5, c4, 1)
        self.C3_p4 = CspLayer(2 * c4, c4, n, shortcut=False)
        self.reduce_conv1 = BaseConv(c4, c3, 1)
        self.C3_p3 = CspLayer(2 * c3, c3, n, shortcut=False)
        self.bu_conv2 = BaseConv(c3, c3, 3, 2)
        self.C3_n3 = CspLayer(2 * c3, c4, n, shortcut=False)
        self.bu_conv1 = BaseConv(c4, c4, 3, 2)
        self.C3_n4 = CspLayer(2 * c4, c5, n, shortcut=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x3, x4, x5 = self.backbone(x)
        fpn_out0 = self.lateral_conv0(x5)
        f_out0 = self.C3_p4(torch.cat([self.upsample(fpn_out0), x4], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat([self.upsample(fpn_out1), x3], 1))
        pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        return pan_out2, pan_out1, pan_out0


class YoloxHead(nn.Module):
    """Decoupled head: per level a 1x1 stem, then a classification branch and a box+objectness branch."""

    def __init__(self, num_classes: int, width: float, strides=(8, 16, 32), in_channels=(256, 512, 1024)):
        super().__init__()
        self.num_classes = num_classes
        self.strides = tuple(strides)
        hidden = int(256 * width)
        self.stems = nn.ModuleList()
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.cls_preds = nn.ModuleList()
        self.reg_preds = nn.ModuleList()
        self.obj_preds = nn.ModuleList()
        for channels in in_channels:
            self.stems.append(BaseConv(int(channels * width), hidden, 1))
            self.cls_convs.append(nn.Sequential(BaseConv(hidden, hidden, 3), BaseConv(hidden, hidden, 3)))
            self.reg_convs.append(nn.Sequential(BaseConv(hidden, hidden, 3), BaseConv(hidden, hidden, 3)))
            self.cls_preds.append(nn.Conv2d(hidden, num_classes, 1))
            self.reg_preds.append(nn.Conv2d(hidden, 4, 1))
            self.obj_preds.append(nn.Conv2d(hidden, 1, 1))

    def forward(self, features) -> torch.Tensor:
        outputs, grids, strides = [], [], []
        for k, (x, stride) in enumerate(zip(features, self.strides)):
            x = self.stems[k](x)
            reg_feat = self.reg_convs[k](x)
            out = torch.cat([self.reg_preds[k](reg_feat), self.obj_preds[k](reg_feat).sigmoid(),
                             self.cls_preds[k](self.cls_convs[k](x)).sigmoid()], 1)
            height, width = out.shape[-2:]
            outputs.append(out.flatten(start_dim=2))
            ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
            grids.append(torch.stack((xs, ys), 2).view(-1, 2))
            strides.append(torch.full((height * width, 1), float(stride)))
        raw = torch.cat(outputs, dim=2).permute(0, 2, 1)  # (batch, anchors, 5 + classes)
        grid = torch.cat(grids).to(raw)
        stride = torch.cat(strides).to(raw)
        return torch.cat([(raw[..., :2] + grid) * stride, torch.exp(raw[..., 2:4]) * stride, raw[..., 4:]], dim=-1)


class Yolox(nn.Module):
    """YOLOX for inference: ``forward(images)`` -> (batch, anchors, 5 + classes) decoded rows.

    Args:
        num_classes: classes of the head (MegadetectorLite: 1).
        depth: depth multiplier (tiny: 0.33).
        width: width multiplier (tiny: 0.375).
    """

    def __init__(self, num_classes: int = 1, depth: float = 0.33, width: float = 0.375):
        super().__init__()
        self.backbone = YoloPafpn(depth, width)
        self.head = YoloxHead(num_classes, width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("this YOLOX is for inference only: call .eval() first")
        return self.head(self.backbone(images))


def build_yolox_tiny(num_classes: int = 1) -> Yolox:
    """A YOLOX-tiny (depth 0.33, width 0.375) in eval mode, with random weights."""
    return Yolox(num_classes, depth=0.33, width=0.375).eval()


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold each BatchNorm into the convolution before it, in place (eval mode only).

    Returns:
        The same model; its state dict then has conv biases and no ``bn`` entries.
    """
    if model.training:
        raise RuntimeError("fuse_conv_bn needs a model in eval mode (BatchNorm running statistics)")
    for module in model.modules():
        if isinstance(module, BaseConv) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = nn.utils.fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = nn.Identity()
    return model
