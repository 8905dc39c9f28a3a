"""Fake but plausible people for the demo: Chinese names, mobiles, ID numbers (valid check
characters), addresses and employers by region. Deterministic for a seeded random.Random."""
from __future__ import annotations

import random
from datetime import date

from .customers import rules
from .customers.rules import Category


SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
            "于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛")
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛")
MALE_CHARS = "伟强磊军勇杰涛明超刚平辉鹏华飞斌波宇浩俊峰建国志海东林文博晨阳毅成龙亮新凯振"
FEMALE_CHARS = "芳娜敏静丽艳娟霞燕玲婷雪慧颖琳晶倩佳欣悦萍红梅琴蓉雅璐瑶怡婉秀兰洁薇"

MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                   "152", "153", "155", "156", "157", "158", "159", "166", "173", "176", "177",
                   "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199")

# Resident ID area codes: where customers were born (many VIPs moved to the city).
AREA_CODES = ("440305", "440304", "440303", "440306", "440106", "110105", "110108", "110101",
              "110102", "310115", "330106", "430104", "510107", "420106", "370202", "350203")

CITIES = {
    "755": ("深圳市", {
        "南山区": ("科技园南路", "后海大道", "沙河西路", "深南大道", "白石路"),
        "福田区": ("福华路", "益田路", "香蜜湖路", "金田路", "彩田路"),
        "罗湖区": ("人民南路", "东门中路", "宝安南路", "笋岗路"),
        "宝安区": ("新安六路", "宝安大道", "创业一路"),
        "龙岗区": ("龙翔大道", "布吉路", "坂田五和大道"),
    }, ("华润城", "深圳湾花园", "香蜜湖一号", "中海华庭", "星河丹堤", "招商海月", "万科城", "蔚蓝海岸")),
    "010": ("北京市", {
        "朝阳区": ("建国路", "东三环北路", "亮马桥路", "望京街", "朝阳公园路"),
        "海淀区": ("中关村大街", "学院路", "苏州街", "万泉河路"),
        "东城区": ("东直门内大街", "朝阳门北大街", "王府井大街"),
        "西城区": ("金融大街", "西直门外大街", "月坛北街"),
        "丰台区": ("丽泽路", "南三环西路"),
    }, ("万科星园", "远洋山水", "首开国风", "华贸中心公寓", "当代万国城", "金融街融汇", "观唐")),
}

# Employers are invented; positions fit the category.
EMPLOYERS = {
    Category.GOVERNMENT: {
        "755": ("深圳市南山区人民政府", "深圳市发展和改革委员会", "深圳市福田区住房和建设局",
                "深圳市商务局", "深圳市前海管理局"),
        "010": ("北京市朝阳区人民政府", "北京市海淀区教育委员会", "北京市东城区财政局",
                "北京市商务局", "北京市西城区税务局"),
        "_positions": ("处长", "副处长", "科长", "副局长", "主任科员", "办公室主任", "调研员"),
    },
    Category.SOE: {
        "755": ("华南能源集团有限公司", "鹏城港口集团", "深南投资控股有限公司", "南方电网某供电局",
                "粤海建设工程有限公司"),
        "010": ("京能建设集团", "中华航运集团北京公司", "北方重工集团", "国信通信集团北京分公司",
                "京华城建投资有限公司"),
        "_positions": ("总经理", "副总经理", "党委书记", "部门经理", "财务总监", "工会主席"),
    },
    Category.FINANCE: {
        "755": ("南粤商业银行深圳分行", "前海华信证券", "安泰人寿深圳分公司", "鹏华资本管理有限公司",
                "深港联合基金"),
        "010": ("京华银行金融街支行", "华信证券北京营业部", "北方信托有限公司", "中融保险北京分公司",
                "金桥资产管理公司"),
        "_positions": ("行长", "副行长", "投资总监", "客户经理", "合伙人", "营业部总经理"),
    },
    Category.MILITARY_POLICE: {
        "755": ("深圳市公安局南山分局", "深圳市公安局福田分局", "武警深圳支队", "深圳边检总站"),
        "010": ("北京市公安局朝阳分局", "北京市公安局海淀分局", "武警北京总队某部", "北京卫戍区某部"),
        "_positions": ("大队长", "政委", "所长", "副支队长", "参谋长", "处长"),
    },
    Category.ENTERPRISE: {
        "755": ("鹏城智能科技有限公司", "深圳市宏达贸易有限公司", "前海云帆网络科技有限公司",
                "深圳市金穗实业集团", "南山湾地产有限公司", "深圳市海岸线物流有限公司"),
        "010": ("北京中关村智联科技有限公司", "北京京华地产集团", "北京泰和餐饮管理有限公司",
                "北京博远文化传媒有限公司", "北京东方瑞丰贸易有限公司"),
        "_positions": ("董事长", "总经理", "创始人", "副总裁", "采购总监", "行政总监"),
    },
    Category.INDIVIDUAL: {
        "755": ("", "个体经营", "自由职业", "深圳市某茶行（自营）"),
        "010": ("", "个体经营", "自由职业", "潘家园古玩店（自营）"),
        "_positions": ("", "店主", "收藏爱好者", "投资人"),
    },
}

# Category weights: enterprise and government clients dominate a liquor VIP book.
CATEGORY_WEIGHTS = {Category.ENTERPRISE: 30, Category.GOVERNMENT: 18, Category.SOE: 18,
                    Category.FINANCE: 16, Category.INDIVIDUAL: 12, Category.MILITARY_POLICE: 6}

NOTES = (
    "偏好茅台，每年春节团购",
    "中秋节前采购五粮液礼盒，约 20 箱",
    "喜欢收藏年份酒，关注生肖纪念酒",
    "公司年会用酒，年采购额约 30 万元",
    "偏好酱香型，不喝浓香型",
    "逢年过节送礼需求大，需提前两周备货",
    "对价格敏感，关注会员促销活动",
    "只喝红酒，偏好波尔多列级庄",
    "需开具增值税专用发票",
    "参加过两次品鉴会，反馈很好",
    "由老客户介绍，潜力较大",
    "每季度固定采购一次，送货到公司",
    "喜欢定制酒，曾定制婚宴用酒",
    "偏好威士忌单一麦芽，可推荐新品",
    "端午、中秋、春节三节采购",
    "商务宴请频繁，常订汾酒青花系列",
)


def _name(rnd: random.Random, gender: str) -> str:
    surname = rnd.choice(COMPOUND_SURNAMES) if rnd.random() < 0.02 else rnd.choice(SURNAMES)
    chars = MALE_CHARS if gender == "M" else FEMALE_CHARS
    given = rnd.choice(chars) if rnd.random() < 0.35 else rnd.choice(chars) + rnd.choice(chars)
    return surname + given


def _id_number(rnd: random.Random, born: date, gender: str) -> str:
    seq = rnd.randrange(0, 100) * 10 + rnd.choice((1, 3, 5, 7, 9) if gender == "M" else (0, 2, 4, 6, 8))
    first17 = f"{rnd.choice(AREA_CODES)}{born:%Y%m%d}{seq:03d}"
    return first17 + rules.id_check_char(first17)


def _address(rnd: random.Random, region: str) -> str:
    city, districts, estates = CITIES[region]
    district = rnd.choice(sorted(districts))
    if rnd.random() < 0.6:
        return (f"{city}{district}{rnd.choice(estates)}{rnd.randint(1, 12)}栋"
                f"{rnd.randint(2, 32)}{rnd.randint(1, 4):02d}室")
    return f"{city}{district}{rnd.choice(districts[district])}{rnd.randint(1, 399)}号"
