"""A PyTorch port of the same v201 generator (audio encoder + identity encoder +
bilinear decoder), used only as the speed peer in bench_generate.py (identity
features cached) and bench_train_step.py (the full forward, as training runs it).

Layer for layer the same as s2v_jax's `configs/v201.py` model: same shapes,
same channel counts, same FLOPs; weights are random (speed only).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def cbr(cin, cout, k, s=1, p=0):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AudioEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = cbr(1, 64, 3, 1, 1), cbr(64, 128, 3, 1, 1)
        self.conv3, self.conv4, self.conv5 = cbr(128, 256, 3, 1, 1), cbr(256, 256, 3, 1, 1), cbr(256, 256, 3, 1, 1)
        self.fc6, self.fc7 = cbr(256, 512, (5, 8)), cbr(512, 256, 1)

    def forward(self, x):  # [B, 1, 12, 35]
        x = self.conv2(self.conv1(x))
        x = F.max_pool2d(F.pad(x, (0, 0, 1, 0), value=float("-inf")), 3, (1, 2))
        x = self.conv5(self.conv4(self.conv3(x)))
        x = F.max_pool2d(x, 3, 2)
        return self.fc7(self.fc6(x)).flatten(1)


class IdentityEncoder(nn.Module):
    def __init__(self, cin=15):
        super().__init__()
        self.conv1, self.conv2 = cbr(cin, 96, 7, 2), cbr(96, 256, 5, 2, 1)
        self.conv3, self.conv4, self.conv5 = cbr(256, 512, 3, 1, 1), cbr(512, 512, 3, 1, 1), cbr(512, 512, 3, 1, 1)
        self.fc6, self.fc7 = cbr(512, 512, 6), cbr(512, 256, 1)

    def forward(self, x):
        a = self.conv1(x)
        b = F.max_pool2d(a, 3, 2)
        c = self.conv2(b)
        x = F.max_pool2d(F.pad(c, (0, 1, 0, 1), value=float("-inf")), 3, 2)
        x = self.fc7(self.fc6(self.conv5(self.conv4(self.conv3(x)))))
        return x.flatten(1), a, b, c


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        c = lambda i, o: nn.Conv2d(i, o, 3, 1, 1)  # noqa: E731
        self.fc = nn.Conv2d(512, 128, 1)
        self.conv3, self.conv6, self.conv12 = c(128, 256), c(256, 512), c(512, 256)
        self.conv26a, self.conv26b, self.conv53 = c(512, 256), c(256, 96), c(192, 96)
        self.conv109a, self.conv109b, self.out = c(192, 64), c(64, 32), c(32, 3)

    def forward(self, z, a, b, c, split_skips: bool = False):
        """split_skips: the identity skips' share of the conv after each concatenation computed once for
        the face (batch 1) and broadcast, as s2v_jax's `SkipConv` does; the same function to rounding."""
        up = lambda x, n: F.interpolate(x, size=(n, n), mode="bilinear", align_corners=True)  # noqa: E731
        n = z.shape[0]
        x = F.relu(self.fc(z[:, :, None, None]))
        x = F.relu(self.conv3(up(x, 3)))
        x = F.relu(self.conv6(up(x, 6)))
        x = F.relu(self.conv12(up(x, 12)))
        if split_skips:
            def skip_conv(conv, x, s, size):
                cx = x.shape[1]
                return (F.conv2d(up(x, size), conv.weight[:, :cx], conv.bias, padding=1)
                        + F.conv2d(up(s, size), conv.weight[:, cx:], None, padding=1))
            x = F.relu(self.conv26b(F.relu(skip_conv(self.conv26a, x, c, 26))))
            x = F.relu(skip_conv(self.conv53, x, b, 53))
            x = F.relu(self.conv109b(F.relu(skip_conv(self.conv109a, x, a, 109))))
            return torch.sigmoid(self.out(x))
        x = torch.cat([x, c.expand(n, -1, -1, -1)], 1)
        x = F.relu(self.conv26b(F.relu(self.conv26a(up(x, 26)))))
        x = torch.cat([x, b.expand(n, -1, -1, -1)], 1)
        x = torch.cat([F.relu(self.conv53(up(x, 53))), a.expand(n, -1, -1, -1)], 1)
        x = F.relu(self.conv109b(F.relu(self.conv109a(up(x, 109)))))
        return torch.sigmoid(self.out(x))


class V201(nn.Module):
    def __init__(self):
        super().__init__()
        self.audio, self.identity, self.decoder = AudioEncoder(), IdentityEncoder(), Decoder()

    def generate_from_identity(self, mfcc, ident, split_skips: bool = False):
        emb, a, b, c = ident
        z = torch.cat([self.audio(mfcc), emb.expand(mfcc.shape[0], -1)], 1)
        return self.decoder(z, a, b, c, split_skips=split_skips)

    def forward(self, mfcc, identity):  # [B, 1, 12, 35], [B, 15, 112, 112] -> [B, 3, 109, 109]
        return self.generate_from_identity(mfcc, self.identity(identity))
