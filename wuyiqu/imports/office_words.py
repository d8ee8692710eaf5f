"""The words offices write over their ledgers' columns, per import kind: the one dictionary the
import maps headers with (``wuyiqu.imports.headers``).

Each kind's own columns already count — the template header, the English key (SPEC §7) and the
column's aliases. Here are the other words communities, streets and testing points use for the same
column. To teach the import a new word, add it to ``COMMON`` (every kind with a column of that key)
or to the kind's entry in ``BY_KIND`` (only there: 类型 means a case's type in ``cases`` and a
unit's kind in ``units``). Headers compare loosely (``headers.normalise``): case, spaces, line
breaks, ``*``, ``_``/``-``, full-width brackets and a trailing colon do not matter, and a note in
brackets (联系电话（手机）) is dropped when the whole header is not known.

Words that name a column the import does not take (序号, 性别, 民族, 户主姓名, 备注 …) need not be
listed: every column that maps to nothing is shown as 不导入 and left out.
"""

from __future__ import annotations

COMMON: dict[str, tuple[str, ...]] = {
    "id_number": ("身份证号码", "公民身份号码", "公民身份证号码", "身份证件号码", "证件号码", "证件号", "身份证号",
                  "居民身份证号码", "居民身份证号", "身份证", "身份证件号", "身份号码", "证件号码(身份证)"),
    "name": ("姓名", "居民姓名", "人员姓名", "被检测人姓名", "受检人姓名", "受检者姓名", "名字", "被采样人姓名"),
    "phone": ("联系电话", "手机号", "手机号码", "手机", "联系方式", "电话号码", "联系手机", "电话", "本人电话"),
    "household_code": ("户编码", "户号", "房号", "门牌号", "房屋编号", "户编号"),
    "unit_code": ("单位编码", "单位代码", "小区编码", "楼栋编码", "网格编码"),
}

BY_KIND: dict[str, dict[str, tuple[str, ...]]] = {
    "residents": {
        "exempt": ("是否卧床", "卧床人员", "是否免检", "免检人员", "长期卧床"),
    },
    "households": {
        "code": ("户号", "房号", "户编号"),
        "unit_code": ("所属楼栋编码", "楼栋编码", "所属单位"),
        "address": ("地址", "住址", "家庭住址", "详细地址", "门牌号", "现住址"),
        "verified_on": ("核实日期", "核查日期", "摸排日期"),
    },
    "nat-results": {
        "sampled_at": ("采样时间", "采样日期", "采集时间", "采样日期时间", "检测时间", "采样时间(北京时间)"),
        "result": ("检测结果", "核酸结果", "核酸检测结果", "结果"),
    },
    "special-population": {
        "tags": ("人员类别", "类别", "人群类别", "特殊人群类别", "特殊人群类型", "人员类型"),
        "needs": ("需求", "帮扶需求", "主要需求", "困难需求", "服务需求"),
        "helper": ("帮扶责任人", "帮扶人", "包保责任人", "责任人", "联系干部"),
        "reviewed_on": ("复核日期", "核查日期", "更新日期"),
    },
    "verifications": {
        "verified_on": ("核实日期", "核查日期", "摸排日期"),
        "verifier": ("核实人", "核查人", "摸排人"),
    },
    "close-contacts": {"start_on": ("隔离开始日期", "开始隔离日期"), "end_on": ("隔离结束日期", "解除隔离日期")},
    "home-quarantines": {"start_on": ("居家开始日期", "开始日期"), "end_on": ("居家结束日期", "解除日期")},
    "returnees": {"origin": ("来源地", "从何地返回", "出发地"), "arrived_on": ("返回日期", "抵达日期", "到达日期")},
    "inspections": {"inspected_on": ("检查日期", "检查时间"), "inspector": ("检查人", "检查人员")},
    "signatures": {"signed_on": ("签名日期", "签字日期")},
}


def words_for(kind_name: str, key: str) -> tuple[str, ...]:
    """The office words for column ``key`` of kind ``kind_name`` (its own entry first)."""
    return BY_KIND.get(kind_name, {}).get(key, ()) + COMMON.get(key, ())
