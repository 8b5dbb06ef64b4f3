"""The SAVOS network: a symmetric (weight-shared) encoder, a global convolution block, an attention decoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionModule
from .backbone import IMAGENET_MEAN, IMAGENET_STD, Encoder, EncoderFeatures
from .config import ModelConfig
from .gcb import GlobalConvBlock


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the bottom and right of ``(N, C, H, W)`` so that H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


class Decoder(nn.Module):
    """Everything after the encoder: the global convolution block on both branches' top features, the three
    attention modules and the head. :meth:`SAVOS.decoder` views a network's own modules this way; a deep copy
    of that view is a decoder of its own (a video's online-adapted weights) over the same encoder."""

    def __init__(
        self,
        gcb: GlobalConvBlock,
        att4: AttentionModule,
        att3: AttentionModule,
        att2: AttentionModule,
        head: nn.Conv2d,
    ) -> None:
        super().__init__()
        self.gcb, self.att4, self.att3, self.att2, self.head = gcb, att4, att3, att2, head

    def forward(self, reference_top: torch.Tensor, target: EncoderFeatures, size: tuple[int, int]) -> torch.Tensor:
        """Logits ``(N, 2, ceil(H/4), ceil(W/4))`` for an unpadded input of ``size = (H, W)``."""
        return _decode(self, reference_top, target, size)


class SAVOS(nn.Module):
    """Mask propagation from a reference frame (frame 0 + its mask) to a target frame (+ previous probabilities).

    The network is exposed as steps so that the reference branch runs once per object per video:

    - :meth:`encode_reference` ``(image (N,3,H,W) in [0,1], mask (N,1,H,W)) -> top (N, C5, H'/32, W'/32)``
    - :meth:`encode_target` ``(image, guidance (N,1,H,W) probabilities) -> EncoderFeatures``
    - :meth:`decode` ``(reference top, target features, (H, W)) -> logits (N, 2, ceil(H/4), ceil(W/4))``

    Channel 1 of the logits is the object, channel 0 the background. Any H, W work: inputs are zero-padded
    to the encoder's stride and the output cropped back. H', W' are the padded sizes.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, encoder: Encoder, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        c2, c3, c4, c5 = encoder.channels
        width = config.decoder_channels
        self.gcb = GlobalConvBlock(2 * c5, width, config.gcb_kernel)
        self.att4 = AttentionModule(c4, width, config.attention_reduction)
        self.att3 = AttentionModule(c3, width, config.attention_reduction)
        self.att2 = AttentionModule(c2, width, config.attention_reduction)
        self.head = nn.Conv2d(width, 2, 3, padding=1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def stride(self) -> int:
        return self.encoder.stride

    def _encode(self, image: torch.Tensor, mask: torch.Tensor) -> EncoderFeatures:
        x = torch.cat([(image - self.mean) / self.std, mask.to(image.dtype)], dim=1)
        return self.encoder(pad_to_multiple(x, self.stride))

    def encode_reference(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Reference branch: frame with the object's ground-truth mask. Only the top features are used."""
        return self._encode(image, mask).top

    def encode_target(self, image: torch.Tensor, guidance: torch.Tensor) -> EncoderFeatures:
        """Target branch: current frame with the previous frame's (soft) probability map of the object."""
        return self._encode(image, guidance)

    def decoder(self) -> Decoder:
        """This network's decoder modules (shared, not copied) as one module."""
        return Decoder(self.gcb, self.att4, self.att3, self.att2, self.head)

    def decode(self, reference_top: torch.Tensor, target: EncoderFeatures, size: tuple[int, int]) -> torch.Tensor:
        """Logits ``(N, 2, ceil(H/4), ceil(W/4))`` for an unpadded input of ``size = (H, W)``."""
        return _decode(self, reference_top, target, size)

    def forward(
        self,
        reference_image: torch.Tensor,
        reference_mask: torch.Tensor,
        image: torch.Tensor,
        guidance: torch.Tensor,
    ) -> torch.Tensor:
        """Both branches and the decoder in one call (training). Returns logits at 1/4 of the input size."""
        reference_top = self.encode_reference(reference_image, reference_mask)
        return self.decode(reference_top, self.encode_target(image, guidance), (image.shape[-2], image.shape[-1]))


def _decode(
    parts: Decoder | SAVOS, reference_top: torch.Tensor, target: EncoderFeatures, size: tuple[int, int]
) -> torch.Tensor:
    x = parts.gcb(torch.cat([reference_top, target.top], dim=1))
    x = parts.att4(target.res4, x)
    x = parts.att3(target.res3, x)
    x = parts.att2(target.res2, x)
    logits = parts.head(x)
    return logits[..., : math.ceil(size[0] / 4), : math.ceil(size[1] / 4)]
