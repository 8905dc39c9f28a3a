"""The demo company: units, staff accounts, ~300 customer files and a lived-in membership programme.

Used by `portal demo`, by the tests and by the browser tests, so the data is deterministic
(seeded random.Random) and loading is idempotent: what already exists is left alone.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock, demo_credit, demo_events, demo_messages, demo_reports
from .accounts import service as accounts
from .accounts.actor import Actor
from .accounts.models import Role, User
from .accounts.passwords import check_password_rule
from .audit import service as audit
from .customers import rules
from .customers.models import CustomerFile
from .customers.rules import Category
from .customers.service import CustomerInput, create_file
from . import demo_privacy, demo_service
from .db import Database
from .org import service as org
from .org.models import OrgUnit
from .vault import Vault

DEFAULT_PASSWORD = "vip-demo-2026!"
PASSWORD_ENV = "PORTAL_DEMO_PASSWORD"
SEED = 20260101
FILES_PER_SALESPERSON = 50
URL_HINT = "http://127.0.0.1:8000"
BORN_FROM, BORN_TO = date(1955, 1, 1), date(2000, 12, 31)


@dataclass(frozen=True)
class DemoUnit:
    code: str
    name: str
    parent: str | None


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: str
    unit: str


# Parents before children.
DEMO_UNITS: tuple[DemoUnit, ...] = (
    DemoUnit("HQ", "VIP 酒业集团", None),
    DemoUnit("755", "深圳大区", "HQ"),
    DemoUnit("010", "北京大区", "HQ"),
    DemoUnit("755A", "深圳一组", "755"),
    DemoUnit("755B", "深圳二组", "755"),
    DemoUnit("010A", "北京一组", "010"),
)

DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("alice", "艾丽丝", Role.SALESPERSON, "755A"),
    DemoUser("amy", "艾米", Role.SALESPERSON, "755A"),
    DemoUser("charlie", "查理", Role.SALESPERSON, "755B"),
    DemoUser("chris", "克里斯", Role.SALESPERSON, "755B"),
    DemoUser("frank", "弗兰克", Role.SALESPERSON, "010A"),
    DemoUser("fiona", "菲奥娜", Role.SALESPERSON, "010A"),
    DemoUser("bob", "鲍勃", Role.LEADER, "755A"),
    DemoUser("ivan", "伊万", Role.LEADER, "755B"),
    DemoUser("henry", "亨利", Role.LEADER, "010A"),
    DemoUser("grace", "格蕾丝", Role.LEADER, "755"),
    DemoUser("cathy", "凯茜", Role.CUSTOMER_SERVICE, "HQ"),
    DemoUser("dave", "戴夫", Role.AUDITOR, "HQ"),
    DemoUser("erin", "艾琳", Role.ADMIN, "HQ"),
)

SALESPEOPLE: tuple[str, ...] = tuple(u.username for u in DEMO_USERS if u.role == Role.SALESPERSON)


class DemoError(RuntimeError):
    """The database holds something that conflicts with the demo company."""


@dataclass
class DemoSummary:
    password: str
    units_created: int = 0
    users_created: list[str] = field(default_factory=list)
    files_created: int = 0
    users: list[DemoUser] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    members_created: int = 0
    purchases_created: int = 0
    notes: list[str] = field(default_factory=list)  # what to try in the membership programme

    @property
    def changed(self) -> bool:
        return bool(self.units_created or self.users_created or self.files_created or self.members_created)


def demo_password(stdin_value: str | None = None) -> str:
    """The password for demo accounts: given on stdin, else $PORTAL_DEMO_PASSWORD, else the default."""
    if stdin_value is not None:
        return stdin_value
    return os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD


# ---------------------------------------------------------------- fake but plausible people

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


@dataclass(frozen=True)
class DemoCustomer:
    owner: str
    age_minutes: int  # how long ago the file was created, for a realistic history
    data: CustomerInput


def demo_customers(seed: int = SEED, per_salesperson: int = FILES_PER_SALESPERSON) -> list[DemoCustomer]:
    """The demo's customers, oldest first; the same list on every call."""
    rnd = random.Random(seed)
    regions = {u.username: u.unit[:3] for u in DEMO_USERS}
    mobiles: set[str] = set()
    ids: set[str] = set()
    out: list[DemoCustomer] = []
    cats, weights = zip(*CATEGORY_WEIGHTS.items())
    for username in SALESPEOPLE:
        region = regions[username]
        # Every category appears in every salesperson's book.
        categories = list(cats) + rnd.choices(cats, weights, k=per_salesperson - len(cats))
        rnd.shuffle(categories)
        for category in categories[:per_salesperson]:
            gender = "M" if rnd.random() < 0.68 else "F"
            mobile = ""
            while not mobile or mobile in mobiles:
                mobile = rnd.choice(MOBILE_PREFIXES) + f"{rnd.randrange(10 ** 8):08d}"
            mobiles.add(mobile)
            born = BORN_FROM + timedelta(days=rnd.randrange((BORN_TO - BORN_FROM).days + 1))
            id_number = None
            if rnd.random() < 0.9:
                id_number = ""
                while not id_number or id_number in ids:
                    id_number = _id_number(rnd, born, gender)
                ids.add(id_number)
            birthday = born if id_number or rnd.random() < 0.5 else None
            emp = EMPLOYERS[category]
            employer = rnd.choice(emp[region])
            position = rnd.choice(emp["_positions"]) if employer or category == Category.INDIVIDUAL else ""
            notes = rnd.choice(NOTES) if rnd.random() < 0.7 else ""
            if notes and rnd.random() < 0.25:
                notes += f"；生日在 {born.month} 月，可安排生日礼"
            data = CustomerInput(
                name=_name(rnd, gender), gender=gender, mobile=mobile, category=str(category),
                id_number=id_number, birthday=birthday, address=_address(rnd, region),
                employer=employer, position=position, notes=notes)
            age = rnd.randrange(24 * 60, 730 * 24 * 60)
            out.append(DemoCustomer(owner=username, age_minutes=age, data=data))
    out.sort(key=lambda c: -c.age_minutes)  # oldest first: file numbers grow with time
    return out


# ---------------------------------------------------------------- loading

def _ensure_units(s: Session, by: Actor, summary: DemoSummary) -> None:
    for u in DEMO_UNITS:
        unit = org.unit_by_code(s, u.code)
        if unit is None:
            if u.parent is None:
                root = s.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).limit(1))
                if root is not None:
                    raise DemoError(f"The database already has a company ({root.code} {root.name}); "
                                    "load the demo into an empty database.")
            org.add_unit(s, u.code, u.name, u.parent, by=by)
            summary.units_created += 1
        elif unit.name != u.name:
            summary.warnings.append(f"unit {u.code} exists with another name ({unit.name}); left as is")


def _ensure_users(s: Session, password: str, by: Actor, summary: DemoSummary) -> None:
    units = {u.id: u.code for u in org.all_units(s)}
    for du in DEMO_USERS:
        user = s.scalar(select(User).where(User.username == du.username))
        if user is None:
            accounts.add_user(s, du.username, str(du.role), du.unit, password,
                              display_name=du.display_name, by=by)
            summary.users_created.append(du.username)
        elif user.role != du.role or units.get(user.unit_id) != du.unit:
            summary.warnings.append(f"user {du.username} exists as {user.role} in "
                                    f"{units.get(user.unit_id, '?')}; left as is")
        summary.users.append(du)


def _ensure_customers(s: Session, vault: Vault, summary: DemoSummary) -> None:
    owners: dict[str, tuple[User, Actor]] = {}
    for username in SALESPEOPLE:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not user.is_active or user.role != Role.SALESPERSON:
            summary.warnings.append(f"no customers for {username}: not an active salesperson")
            continue
        has = s.scalar(select(func.count()).select_from(CustomerFile)
                       .where(CustomerFile.owner_id == user.id))
        if has:
            continue  # this book was loaded before (or the user made their own): leave it
        owners[username] = (user, accounts.actor_for(user, s.get(OrgUnit, user.unit_id)))
    if not owners:
        return
    now = clock.now()
    for c in demo_customers():
        if c.owner not in owners:
            continue
        user, actor = owners[c.owner]
        f = create_file(s, vault, actor, c.data, owner=user, audit_it=False)
        # Spread the files over the last two years so lists and reports look lived-in.
        f.created_at = f.updated_at = now - timedelta(minutes=c.age_minutes)
        summary.files_created += 1
    s.flush()



# ---------------------------------------------------------------- the membership programme

DEMO_PIN = "246810"  # the stored-value member's PIN (printed by `portal demo`)

# (product, unit price in fen)
MOUTAI = ("茅台 飞天 53度 500ml", 149_900)
WULIANGYE = ("五粮液 第八代 500ml", 109_900)
GUOJIAO = ("国窖1573 500ml", 99_900)
FENJIU = ("汾酒 青花30 500ml", 89_900)
JIANNANCHUN = ("剑南春 水晶剑 500ml", 45_900)
LAFITE = ("拉菲传奇 波尔多红葡萄酒 750ml", 29_800)
MACALLAN = ("麦卡伦 12年 雪莉桶 700ml", 78_800)
ZODIAC = ("茅台 生肖纪念酒 500ml", 399_900)
GIFT_BOX = ("礼盒包装", 12_850)
MOONCAKE_SET = ("中秋团购 五粮液礼盒", 168_000)


def _line(product: tuple[str, int], quantity: int, *, special: bool = False, group: bool = False):
    from .membership.rules import PurchaseLine
    return PurchaseLine(product[0], quantity, product[1], special, group)


class _Till:
    """Runs the programme's own use cases as a dated plan, oldest step first: the clock is set to
    noon (Shanghai) of each step's day and put back after, so every row, ledger lot, card number
    and audit entry carries the day it describes, in the order things happened."""

    def __init__(self, s: Session, vault: Vault, today: date) -> None:
        self.s, self.vault, self.today, self.receipts = s, vault, today, 0
        self.steps: list[tuple[int, int, object]] = []
        self.day = today

    def at(self, days_ago: int, step) -> None:
        self.steps.append((days_ago, len(self.steps), step))

    def run(self) -> None:
        from datetime import datetime, time, timezone

        from .membership.rules import PROGRAMME_TZ

        previous = getattr(clock, "_override", None)  # a clock a test may have frozen
        try:
            for days_ago, _, step in sorted(self.steps, key=lambda x: (-x[0], x[1])):
                self.day = self.today - timedelta(days=days_ago)
                clock.set_now(datetime.combine(self.day, time(12), PROGRAMME_TZ).astimezone(timezone.utc))
                step()
        finally:
            clock.set_now(previous)

    def existed(self, f: CustomerFile) -> None:
        """The demo invents each file's age: make it no younger than its first use."""
        if f.created_at > clock.now():
            f.created_at = f.updated_at = clock.now() - timedelta(days=7)

    def sale(self, actor: Actor, *lines, card=None, file: CustomerFile | None = None, payment: str = "cash",
             pin: str | None = None, referrer=None):
        """A sale to record at its step; ``card`` and ``referrer`` may be callables (resolved then)."""
        from .membership import purchases
        from .membership.outcomes import PurchaseRequest

        def step():
            if file is not None:
                self.existed(file)
            self.receipts += 1
            purchases.record_purchase(self.s, self.vault, actor, PurchaseRequest(
                receipt_no=f"POS{self.day:%Y%m%d}-{self.receipts:04d}", lines=tuple(lines), payment_method=payment,
                card_number=card() if callable(card) else card, customer_id=file.id if file else None, pin=pin,
                referrer_card=referrer() if callable(referrer) else referrer))
        return step


def _birthdays_this_week(s: Session, vault: Vault, books: dict, today: date, want: int = 2) -> list:
    """Up to ``want`` demo customers whose birthday (from the ID number) falls in this week, alice's first."""
    from .membership.overview import week_of
    from .membership.rules import birthday_applies

    start, _ = week_of(today)
    days = [start + timedelta(days=i) for i in range(7)]
    found = []
    for username, (_actor, files) in books.items():
        for f in files:
            raw = vault.decrypt(f.birthday_ct, table="customer_file", column="birthday", row_id=f.id) \
                if f.birthday_ct is not None else None
            born = date.fromisoformat(raw) if raw else None
            if any(birthday_applies(born, d) for d in days):
                found.append((username, f))
                if len(found) == want:
                    return found
    return found


def _ensure_programme(s: Session, vault: Vault, summary: DemoSummary) -> None:
    """Members, cards, purchases and ledgers that show every part of the programme, made through
    its use cases as the salespeople and customer service would have, over the last two years.

    Only into a programme without any data (a second run, or a database in real use, is left alone).
    """
    from .membership import applications, cards, members, points
    from .membership.models import Membership, MembershipApplication, Purchase
    from .membership.rules import programme_today

    if any(s.scalar(select(model.id).limit(1)) is not None
           for model in (Membership, Purchase, MembershipApplication)):
        return
    books: dict[str, tuple[Actor, list[CustomerFile]]] = {}
    for username in SALESPEOPLE:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not user.is_active or user.role != Role.SALESPERSON:
            continue
        files = list(s.scalars(select(CustomerFile).where(CustomerFile.owner_id == user.id)
                               .order_by(CustomerFile.file_no)))
        if files:
            books[username] = (accounts.actor_for(user, s.get(OrgUnit, user.unit_id)), files)
    cathy_user = s.scalar(select(User).where(User.username == "cathy"))
    if "alice" not in books or len(books["alice"][1]) < 10 or cathy_user is None:
        summary.warnings.append("no membership demo: alice's clients or cathy are missing")
        return
    cathy = accounts.actor_for(cathy_user, s.get(OrgUnit, cathy_user.unit_id))
    bob_user = s.scalar(select(User).where(User.username == "bob", User.role == Role.LEADER))
    bob = accounts.actor_for(bob_user, s.get(OrgUnit, bob_user.unit_id)) if bob_user else None
    till = _Till(s, vault, programme_today())
    birthday = _birthdays_this_week(s, vault, books, till.today)
    taken = {f.id for _, f in birthday}

    def clients(username: str, n: int) -> list[CustomerFile]:
        picked = [f for f in books[username][1] if f.id not in taken][:n] if username in books else []
        taken.update(f.id for f in picked)
        return picked

    def card_of(f: CustomerFile):
        """The file's card in use, looked up when the step runs."""
        def number() -> str:
            m = members.membership_of(s, f.id)
            return members.current_card(s, members.primary_account(s, m).id).number
        return number

    alice = books["alice"][0]
    # Oldest files first: the longest histories go to the files that have been there longest.
    expiring, gold, lost, silver, frozen, stored, referred, applicant = clients("alice", 8)

    # Points earned 706 days ago: they expire within the next 30 days.
    till.at(712, till.sale(alice, _line(JIANNANCHUN, 2), _line(LAFITE, 2), file=expiring))
    till.at(706, till.sale(alice, _line(MOUTAI, 1), _line(LAFITE, 1), card=card_of(expiring)))
    till.at(380, till.sale(alice, _line(FENJIU, 1), card=card_of(expiring)))
    till.at(20, till.sale(alice, _line(JIANNANCHUN, 1), card=card_of(expiring)))
    # Gold by spend: a company's annual order (¥51,564 counted) makes it a member and gold at once.
    till.at(250, till.sale(alice, _line(MOUTAI, 30), _line(WULIANGYE, 6), _line(GIFT_BOX, 2, special=True),
                           file=gold))
    till.at(90, till.sale(alice, _line(ZODIAC, 1), _line(GIFT_BOX, 1, special=True), card=card_of(gold)))
    till.at(30, lambda: points.redeem_points(s, alice, card_of(gold)(), "gift-100"))
    till.at(12, till.sale(alice, _line(GUOJIAO, 2), card=card_of(gold)))
    # A card reported lost and replaced by its salesperson: points and history moved.
    lost_card: list[str] = []
    till.at(200, till.sale(alice, _line(WULIANGYE, 1), _line(LAFITE, 2), file=lost))
    till.at(65, till.sale(alice, _line(FENJIU, 1), card=card_of(lost)))
    till.at(25, lambda: lost_card.append(cards.report_loss(s, alice, card_of(lost)(), "客户钱包丢失，会员卡一并遗失")
                                         .number))
    till.at(24, lambda: cards.replace(s, alice, lost_card[0], "客户挂失后补办新卡"))
    # Silver by spend: joined with ¥8,394, then past ¥10,000 counted (the group-buy line is not counted).
    till.at(150, till.sale(alice, _line(MOUTAI, 5), _line(FENJIU, 1), file=silver))
    till.at(40, till.sale(alice, _line(WULIANGYE, 2), _line(MOONCAKE_SET, 1, group=True), card=card_of(silver)))
    # A frozen card.
    till.at(120, till.sale(alice, _line(GUOJIAO, 1), file=frozen))
    till.at(15, lambda: cards.freeze(s, alice, card_of(frozen)(), "客户出国半年，暂停使用"))
    # Joined by application (cathy approved); stored value with a PIN, part spent.
    application: list[int] = []

    def apply(f: CustomerFile, note: str, exception: str) -> None:
        till.existed(f)
        application.append(applications.submit_application(s, alice, f.id, card_type="standard", note=note).id)
        if bob is not None:  # no spend yet: alice's leader documents an exception for customer service
            applications.grant_exception(s, bob, application[-1], exception)

    till.at(96, lambda: apply(stored, "年度礼品采购客户", "年度礼品采购客户，预付储值，特批入会"))
    till.at(95, lambda: applications.review_application(s, cathy, application[0], approve=True))
    till.at(60, lambda: points.recharge_stored_value(s, alice, card_of(stored)(), 500_000,
                                                      payment_method="bank_transfer", note="客户充值"))
    till.at(60, lambda: cards.set_pin(s, alice, card_of(stored)(), DEMO_PIN))
    till.at(10, till.sale(alice, _line(MACALLAN, 1), card=card_of(stored), payment="stored_value", pin=DEMO_PIN))
    # Referred by the gold member (100 referral points to them).
    till.at(70, till.sale(alice, _line(MOUTAI, 1), file=referred, referrer=card_of(gold)))
    # An application waiting for customer service, and a sale made without a card (claimable).
    till.at(2, lambda: apply(applicant, "老客户介绍，计划下月大额采购", "老客户介绍，下月大额采购，特批入会"))
    till.at(3, till.sale(alice, _line(MOUTAI, 1), _line(GIFT_BOX, 1, special=True)))
    # Members whose birthday is this week.
    for username, f in birthday:
        till.at(45, till.sale(books[username][0], _line(GUOJIAO, 1), file=f))
    # A few of the other salespeople's clients.
    for f in clients("amy", 1):
        till.at(100, till.sale(books["amy"][0], _line(MOUTAI, 2), file=f))
        till.at(33, till.sale(books["amy"][0], _line(LAFITE, 3), card=card_of(f)))
    for f in clients("charlie", 1):  # charlie's reminder list has points due to expire too
        till.at(715, till.sale(books["charlie"][0], _line(MOUTAI, 1), file=f))
        till.at(709, till.sale(books["charlie"][0], _line(WULIANGYE, 1), card=card_of(f)))
        till.at(30, till.sale(books["charlie"][0], _line(JIANNANCHUN, 1), card=card_of(f)))
    for f in clients("chris", 1):
        till.at(60, till.sale(books["chris"][0], _line(JIANNANCHUN, 2), file=f))
    for f in clients("frank", 1):
        till.at(80, till.sale(books["frank"][0], _line(MOUTAI, 1), _line(MOONCAKE_SET, 1, group=True), file=f))
    for f in clients("fiona", 1):  # ¥596 then ¥459: joins on the cumulative ¥1,000
        till.at(200, till.sale(books["fiona"][0], _line(LAFITE, 2), file=f))
        till.at(100, till.sale(books["fiona"][0], _line(JIANNANCHUN, 1), file=f))
    till.run()
    s.flush()
    summary.members_created = s.scalar(select(func.count()).select_from(Membership)) or 0
    summary.purchases_created = s.scalar(select(func.count()).select_from(Purchase)) or 0


def programme_notes(s: Session, vault: Vault) -> list[str]:
    """What to try in the demo's membership programme (card numbers, the PIN, a receipt), if loaded."""
    from .membership.members import current_card
    from .membership.models import (CardAccount, MemberCard, Membership, MembershipApplication,
                                    PointsEntryRow, Purchase)
    from .membership.overview import week_of
    from .membership.programme import settings_on
    from .membership.rules import birthday_applies, programme_today

    notes = []
    sv = s.scalar(select(Purchase).where(Purchase.payment_method == "stored_value").order_by(Purchase.id).limit(1))
    if sv is not None and sv.account_id is not None:
        account = s.get(CardAccount, sv.account_id)
        card = current_card(s, account.id)
        f = s.get(CustomerFile, sv.customer_id)
        notes.append(f"stored value: card {card.number if card else sv.card_number} (file {f.file_no}) holds "
                     f"¥{account.stored_value_fen / 100:,.2f}; the member's PIN is {DEMO_PIN}")
    anon = s.scalar(select(Purchase).where(Purchase.customer_id.is_(None), Purchase.claimed_at.is_(None))
                    .order_by(Purchase.id.desc()).limit(1))
    if anon is not None:
        notes.append(f"sold without a card: receipt {anon.receipt_no} ({anon.purchased_on.isoformat()}); cathy "
                     f"(customer service) can credit its points to a card within 30 days")
    app = s.scalar(select(MembershipApplication).where(MembershipApplication.status == "pending")
                   .order_by(MembershipApplication.id).limit(1))
    if app is not None:
        notes.append(f"membership application for file {s.get(CustomerFile, app.customer_id).file_no} "
                     "waits for cathy's review")
    frozen = s.scalar(select(MemberCard.number).join(CardAccount, CardAccount.id == MemberCard.account_id)
                      .where(CardAccount.status == "frozen", MemberCard.status == "current").limit(1))
    replaced = s.execute(select(MemberCard.number, MemberCard.replaces_id)
                         .where(MemberCard.replaces_id.is_not(None)).limit(1)).first()
    if frozen:
        notes.append(f"frozen card: {frozen}")
    if replaced:
        old = s.get(MemberCard, replaced.replaces_id)
        notes.append(f"lost card {old.number}, replaced by {replaced.number}")
    if notes:
        today = programme_today()
        horizon = today + timedelta(days=settings_on(s, today).expiry_warning_days)
        due = sorted(set(s.scalars(
            select(User.username).join(Membership, Membership.owner_id == User.id)
            .join(CardAccount, CardAccount.membership_id == Membership.id)
            .join(PointsEntryRow, PointsEntryRow.account_id == CardAccount.id)
            .where(Membership.status == "active", PointsEntryRow.points > 0,
                   PointsEntryRow.expires_on > today, PointsEntryRow.expires_on <= horizon))))
        start, _ = week_of(today)
        week = [start + timedelta(days=i) for i in range(7)]
        born = set()
        for f, owner in s.execute(select(CustomerFile, User.username)
                                  .join(Membership, Membership.customer_id == CustomerFile.id)
                                  .join(User, User.id == Membership.owner_id)
                                  .where(Membership.status == "active", CustomerFile.birthday_ct.is_not(None))):
            raw = vault.decrypt(f.birthday_ct, table="customer_file", column="birthday", row_id=f.id)
            if raw and any(birthday_applies(date.fromisoformat(raw), d) for d in week):
                born.add(owner)
        active = s.scalar(select(func.count()).select_from(Membership).where(Membership.status == "active"))

        def names(users) -> str:
            users = sorted(users)
            return " and ".join([", ".join(users[:-1]), users[-1]] if len(users) > 1 else users) or "nobody"

        notes.insert(0, f"{active} members. Reminder lists (their salespeople's and leaders'): points due "
                        f"to expire for members of {names(due)}; birthdays this week for members of {names(born)}")
    return notes


def load_demo(db: Database, vault: Vault, password: str = DEFAULT_PASSWORD) -> DemoSummary:
    """Create whatever part of the demo company is missing, in one transaction.

    A second call changes nothing (existing units, users and customer books are left alone,
    passwords included). Raises DemoError on a conflicting database, AccountError for a
    password the password rule refuses.
    """
    for du in DEMO_USERS:  # fail before hashing anything
        try:
            check_password_rule(password, username=du.username)
        except ValueError as exc:
            raise accounts.AccountError(
                "password", f"Demo password refused for {du.username}: {exc}") from None
    summary = DemoSummary(password=password)
    by = Actor.system("demo")
    with db.write() as s:
        _ensure_units(s, by, summary)
        _ensure_users(s, password, by, summary)
        _ensure_customers(s, vault, summary)
        _ensure_programme(s, vault, summary)
        demo_reports.seed(s, vault, summary)
        demo_events.seed(s, vault, summary)
        demo_credit.seed(s, vault, summary)
        summary.notes = programme_notes(s, vault)
        demo_service.seed(s, vault, summary)
        demo_messages.seed(s, vault, summary)
        demo_privacy.seed(s, vault, summary)
        if summary.changed:
            audit.record(s, by, "demo.load", object_type="demo", object_id="demo",
                         detail=f"units={summary.units_created} users={len(summary.users_created)} "
                                f"customer_files={summary.files_created}")
    return summary
