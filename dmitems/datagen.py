"""Deterministic, realistic test data: Chinese and English product names, prices, descriptions.

The same seed always gives the same rows, on every machine and Python
version: only :class:`random.Random`'s documented, stable methods are used
(``random()``, and choices made from it), never ``hash()`` or set order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from dmitems.models import DESCRIPTION_MAX, NAME_MAX

CHINESE_SHARE = 0.6
DESCRIPTION_SHARE = 0.7
FREE_SHARE = 0.003  # gifts and samples at price 0

_ZH_BRANDS = (
    "小米", "华为", "联想", "海尔", "美的", "格力", "罗技", "雷蛇", "得力", "晨光",
    "李宁", "安踏", "九阳", "苏泊尔", "飞利浦", "索尼", "绿联", "倍思", "南孚", "公牛",
)
_ZH_QUALITIES = (
    "无线", "便携", "静音", "智能", "超薄", "大容量", "快充", "防水", "加厚", "折叠",
    "机械", "人体工学", "高清", "降噪", "节能", "不锈钢", "纯棉", "轻量", "迷你", "专业",
)
_ZH_PRODUCTS = (
    "键盘", "鼠标", "蓝牙耳机", "充电宝", "保温杯", "电饭煲", "空气炸锅", "显示器支架",
    "数据线", "插线板", "双肩包", "运动鞋", "台灯", "电动牙刷", "笔记本", "中性笔",
    "路由器", "移动硬盘", "T恤", "雨伞", "收纳箱", "电热水壶", "吹风机", "投影仪",
)
_ZH_VARIANTS = (
    "黑色", "白色", "灰色", "蓝色", "粉色", "标准版", "升级版", "旗舰版", "青春版",
    "2024款", "礼盒装", "三件套", "家庭装", "Pro", "Max",
)
_ZH_PHRASES = (
    "正品保证，全国联保。", "七天无理由退换。", "官方旗舰店直发。", "支持开具发票。",
    "采用优质材料，经久耐用。", "简约设计，百搭好看。", "适合办公、学习与出行。",
    "赠品数量有限，送完即止。", "一年质保，售后无忧。", "环保包装，轻松收纳。",
    "续航持久，充电快速。", "握感舒适，长时间使用不累。",
)

_EN_BRANDS = (
    "Acme", "Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Stark",
    "Wayne", "Tyrell", "Hooli", "Vandelay", "Soylent", "Cyberdyne", "Wonka",
)
_EN_QUALITIES = (
    "Wireless", "Portable", "Silent", "Smart", "Ultra-thin", "Rechargeable", "Waterproof",
    "Foldable", "Mechanical", "Ergonomic", "HD", "Noise-cancelling", "Stainless", "Compact",
)
_EN_PRODUCTS = (
    "Keyboard", "Mouse", "Headphones", "Power Bank", "Travel Mug", "Rice Cooker", "Air Fryer",
    "Monitor Arm", "USB-C Cable", "Power Strip", "Backpack", "Running Shoes", "Desk Lamp",
    "Toothbrush", "Notebook", "Gel Pen", "Router", "SSD", "T-shirt", "Umbrella", "Kettle",
)
_EN_VARIANTS = (
    "Black", "White", "Graphite", "Blue", "Rose", "Lite", "Plus", "Pro", "Max", "Mini",
    "2024 Edition", "Gift Set", "3-pack", "Family Pack",
)
_EN_PHRASES = (
    "Genuine product with a one-year warranty.", "Free returns within 30 days.",
    "Ships from our own warehouse.", "Made from durable, high-quality materials.",
    "Clean design that fits any desk.", "Great for the office, school and travel.",
    "Long battery life and fast charging.", "Comfortable for all-day use.",
    "Recyclable packaging.", "Limited stock.",
)


def _price(rng: random.Random) -> int:
    """Whole currency units, log-normal around 150 with a long tail, mostly ending in 9."""
    if rng.random() < FREE_SHARE:
        return 0
    # Box-Muller from random() alone, so the sequence is stable across Python versions.
    u1, u2 = rng.random() or 1e-12, rng.random()
    normal = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    price = math.exp(math.log(150) + 1.3 * normal)
    if price < 10:
        return max(1, round(price))
    if rng.random() < 0.7:  # charm pricing: 199, 2999
        step = 10 if price < 1000 else 100
        return int(price // step * step + step - 1)
    return round(price)


def _pick(rng: random.Random, options: tuple[str, ...]) -> str:
    return options[int(rng.random() * len(options))]


def _name(rng: random.Random, chinese: bool) -> str:
    if chinese:
        parts = [_pick(rng, _ZH_BRANDS), _pick(rng, _ZH_QUALITIES), _pick(rng, _ZH_PRODUCTS)]
        if rng.random() < 0.6:
            parts.append(" " + _pick(rng, _ZH_VARIANTS))
        name = "".join(parts)
    else:
        parts = [_pick(rng, _EN_BRANDS), _pick(rng, _EN_QUALITIES), _pick(rng, _EN_PRODUCTS)]
        if rng.random() < 0.6:
            parts.append(_pick(rng, _EN_VARIANTS))
        name = " ".join(parts)
    if rng.random() < 0.3:
        name += f" {chr(65 + int(rng.random() * 26))}{int(rng.random() * 900) + 100}"
    return name[:NAME_MAX]


def _description(rng: random.Random, chinese: bool) -> str:
    phrases = _ZH_PHRASES if chinese else _EN_PHRASES
    sentences = [_pick(rng, phrases) for _ in range(1 + int(rng.random() * 4))]
    return ("" if chinese else " ").join(sentences)[:DESCRIPTION_MAX]


def generate_items(count: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` valid ItemCreate records, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    for _ in range(count):
        chinese = rng.random() < CHINESE_SHARE
        name = _name(rng, chinese)
        description = _description(rng, chinese) if rng.random() < DESCRIPTION_SHARE else None
        yield {"name": name, "description": description, "price": _price(rng)}
