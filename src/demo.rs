//! The demo chain loaded by `memberhub demo` or `memberhub --demo`, so a newcomer sees a living
//! system in one command: three stores in Shanghai, staff of every role with generated
//! passwords, 200 customers (about 120 of them members, on every tier), a year of consumptions
//! with a few refunds and check-ins, and a small rewards catalogue.
//!
//! Everything that moves money or points goes through the production code paths
//! (`consumption::record`, `consumption::refund`, `ledger::credit`, `membership::enrol`), one
//! write transaction per event in time order, so balances, lots, tiers and referral credits
//! are exactly what the live system would have produced. The data comes from a seeded PRNG:
//! the same day gives the same chain (passwords excepted, which are always fresh).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use entity::{
    consumption, consumption_refund, customer, customer_note, customer_tag, event_slot, member,
    member_event, points_lot, reward, staff, store, tier,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::auth::staff::Role;
use crate::cache::Cache;
use crate::config::{LoyaltySettings, Settings};
use crate::error::ApiError;
use crate::loyalty::calendar::Calendar;
use crate::loyalty::consumption::{record, refund, Item, NewConsumption};
use crate::loyalty::membership::{self, via};
use crate::privacy::{Phone, Vault};
use crate::staff::accounts::{create_account, NewAccount, Username};
use crate::{audit, db};

/// Fixed so that two loads on the same day produce the same chain.
const SEED: u64 = 20_261_124;
const CUSTOMERS: usize = 200;
/// Members per tier, entry tier first; the rest of the customers are not members.
const MEMBERS_PER_TIER: [usize; 4] = [84, 24, 9, 3];
/// Customers who registered (from an online channel) but never came in.
const LEADS: usize = 10;
const REFERRED: usize = 12;
const REFUNDS: usize = 8;
const CHECKIN_MEMBERS: usize = 15;
/// A customer's visits stop here even if their spending goal is not met.
const MAX_VISITS: usize = 40;

struct StoreSpec {
    name: &'static str,
    /// Prefix of usernames (`jingan-manager`) and of order numbers (`JA20261123001`).
    slug: &'static str,
    order_prefix: &'static str,
    address: &'static str,
    phone: &'static str,
    /// Display names of the manager, the consultant and the front desk.
    people: [&'static str; 3],
}

const STORES: [StoreSpec; 3] = [
    StoreSpec {
        name: "静安店",
        slug: "jingan",
        order_prefix: "JA",
        address: "上海市静安区南京西路1601号3楼",
        phone: "021-62881601",
        people: ["王丽华", "李思雨", "张婷"],
    },
    StoreSpec {
        name: "徐汇店",
        slug: "xuhui",
        order_prefix: "XH",
        address: "上海市徐汇区淮海中路999号5楼",
        phone: "021-64310999",
        people: ["刘芳", "赵雅琪", "孙悦"],
    },
    StoreSpec {
        name: "浦东店",
        slug: "pudong",
        order_prefix: "PD",
        address: "上海市浦东新区世纪大道88号2楼",
        phone: "021-58880088",
        people: ["周静", "吴欣怡", "郑佳"],
    },
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "潘", "袁", "蔡", "蒋", "余", "叶", "程", "魏", "苏", "吕", "丁", "沈", "姚",
    "陆", "范", "汪", "金", "顾", "钱", "欧阳", "上官",
];
const FEMALE_NAMES: &[&str] = &[
    "静", "敏", "丽", "婷", "雪", "慧", "颖", "琳", "洁", "倩", "雯", "怡", "欣", "悦", "璐", "晶",
    "嘉怡", "梓涵", "诗琪", "雨萱", "思雨", "欣怡", "晓燕", "婉清", "若曦", "可馨", "佳琪", "梦瑶",
    "子萱", "静怡", "丹丹", "晓雯", "文婷", "雅婷", "美玲", "秀英", "佳慧", "亦菲", "心怡", "语嫣",
    "书瑶", "沐晴", "诗涵", "雨桐", "梦洁", "慧敏", "晓丽", "海燕", "春梅",
];
const MALE_NAMES: &[&str] = &[
    "伟", "强", "磊", "军", "杰", "涛", "明", "超", "浩", "鹏", "子轩", "浩然", "宇航", "志强",
    "建华", "俊杰", "文博", "晨阳", "一鸣", "嘉豪",
];
/// Where customers come from, with weights; `referral` is given to the referred ones only.
const SOURCES: &[(&str, u32)] = &[
    ("walk_in", 30),
    ("meituan", 18),
    ("xiaohongshu", 18),
    ("dianping", 12),
    ("douyin", 12),
    ("store", 10),
];
const TAGS: &[&str] = &[
    "抗衰",
    "补水",
    "美白",
    "敏感肌",
    "祛斑",
    "怕疼",
    "老带新",
    "周末到店",
    "夜间预约",
    "团购客",
    "高客单",
    "轻医美入门",
];
const NOTES: &[&str] = &[
    "怕疼，注射前需提前敷麻",
    "喜欢粉色玫瑰，生日可准备花束",
    "对酒精过敏，清洁时避免含酒精产品",
    "偏好工作日下午到店",
    "只接受女医生操作",
    "喜欢喝温柠檬水",
    "上次术后恢复较慢，需重点回访",
    "皮肤偏干，建议搭配补水项目",
    "比较在意隐私，勿在公共区域提及项目",
    "计划年底前完成抗衰疗程",
];
const REFUND_REASONS: &[&str] = &[
    "疗程未做完，退剩余次数",
    "顾客对效果不满意，协商退款",
    "重复收费，原路退回",
    "身体原因暂停项目",
];

/// The treatment menu: name, level (0 everyday .. 3 annual package) and price points in yuan.
const ITEMS: &[(&str, u8, &[i64])] = &[
    ("小气泡清洁", 0, &[298, 368, 398]),
    ("补水导入", 0, &[398, 580, 680]),
    ("果酸焕肤", 0, &[580, 780, 980]),
    ("光子嫩肤", 0, &[1_280, 1_980, 2_680, 3_680]),
    ("水光针", 0, &[1_980, 2_680, 3_280, 4_800]),
    ("肉毒素除皱", 0, &[1_980, 2_980, 4_980]),
    ("皮秒祛斑", 1, &[2_980, 4_800, 6_800]),
    ("黄金微针", 1, &[3_800, 5_800, 8_800]),
    ("嗨体颈纹", 1, &[3_800, 5_800, 7_800]),
    ("玻尿酸填充", 1, &[4_800, 6_800, 9_800, 12_800]),
    ("超声刀", 2, &[12_800, 16_800, 26_800]),
    ("热玛吉", 2, &[19_800, 29_800, 39_800]),
    ("线雕提升", 2, &[16_800, 26_800, 36_800]),
    ("抗衰年度疗程卡", 3, &[68_000, 98_000, 128_000]),
];
/// Add-ons a visit often includes besides its main treatment.
const ADD_ONS: &[(&str, i64)] = &[
    ("小气泡清洁", 298),
    ("补水导入", 398),
    ("冷敷修复面膜", 198),
];

/// A customer's spending year: the goal, a ceiling that keeps them under the next tier, and
/// how likely each treatment level is (index = level).
#[derive(Clone, Copy)]
struct Budget {
    goal_yuan: (i64, i64),
    ceiling_yuan: i64,
    level_weights: [u32; 4],
}

/// Per tier rank (entry first), then for customers who are not members. Goals clear each
/// threshold (30,000 / 80,000 / 200,000 元) with room for the small refunds the demo makes.
const MEMBER_BUDGETS: [Budget; 4] = [
    Budget {
        goal_yuan: (800, 24_000),
        ceiling_yuan: 28_000,
        level_weights: [80, 20, 0, 0],
    },
    Budget {
        goal_yuan: (33_000, 65_000),
        ceiling_yuan: 78_000,
        level_weights: [35, 40, 25, 0],
    },
    Budget {
        goal_yuan: (88_000, 170_000),
        ceiling_yuan: 195_000,
        level_weights: [20, 30, 50, 0],
    },
    Budget {
        goal_yuan: (210_000, 320_000),
        ceiling_yuan: 400_000,
        level_weights: [15, 25, 45, 15],
    },
];
const GUEST_BUDGET: Budget = Budget {
    goal_yuan: (300, 25_000),
    ceiling_yuan: 40_000,
    level_weights: [80, 20, 0, 0],
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Carer {
    Consultant,
    Manager,
    Nobody,
}

struct CustomerPlan {
    name: String,
    gender: &'static str,
    birthday: Option<NaiveDate>,
    phone: String,
    store: usize,
    carer: Carer,
    source: &'static str,
    /// Index of the referring customer (always a member planned earlier).
    referrer: Option<usize>,
    /// Tier rank aimed at; None for customers who are not members.
    tier_rank: Option<usize>,
    tags: Vec<&'static str>,
    note: Option<&'static str>,
    created_at: DateTime<Utc>,
}

enum EventKind {
    Consume {
        customer: usize,
        store: usize,
        /// Index among the plan's consumptions, to let refunds name theirs.
        visit: usize,
        items: Vec<Item>,
        paid_fen: i64,
    },
    Refund {
        visit: usize,
        store: usize,
        amount_fen: i64,
        reason: &'static str,
    },
    Checkin {
        customer: usize,
        date: NaiveDate,
    },
}

struct Event {
    at: DateTime<Utc>,
    kind: EventKind,
}

struct Plan {
    customers: Vec<CustomerPlan>,
    events: Vec<Event>,
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if roll < *w {
            return *item;
        }
        roll -= w;
    }
    items[0].0
}

/// A moment during opening hours (10:00-20:30) of `date`, in the business zone.
fn opening_hours(rng: &mut StdRng, cal: &Calendar, date: NaiveDate) -> DateTime<Utc> {
    cal.start_of(date) + Duration::minutes(rng.random_range(600..1230))
}

fn fen(yuan: i64) -> i64 {
    yuan * 100
}

/// One visit's items within `room` yuan: a main treatment of a level drawn from the budget's
/// weights (or anything cheaper that still fits), sometimes with an add-on.
fn visit_items(rng: &mut StdRng, budget: &Budget, room: i64) -> Option<Vec<(&'static str, i64)>> {
    let levels: Vec<(u8, u32)> = (0u8..4)
        .map(|l| (l, budget.level_weights[usize::from(l)]))
        .collect();
    let level = weighted(rng, &levels);
    let max_level = levels.iter().filter(|(_, w)| *w > 0).map(|(l, _)| *l).max();
    let fits = |lv: &dyn Fn(u8) -> bool| -> Vec<(&'static str, i64)> {
        ITEMS
            .iter()
            .filter(|(_, l, _)| lv(*l))
            .flat_map(|(name, _, prices)| prices.iter().map(move |p| (*name, *p)))
            .filter(|(_, p)| *p <= room)
            .collect()
    };
    let mut choices = fits(&|l| l == level);
    if choices.is_empty() {
        choices = fits(&|l| Some(l) <= max_level);
    }
    if choices.is_empty() {
        return None;
    }
    let main = *pick(rng, &choices);
    let mut items = vec![main];
    let (add_on, price) = *pick(rng, ADD_ONS);
    if add_on != main.0 && main.1 + price <= room && rng.random_bool(0.3) {
        items.push((add_on, price));
    }
    Some(items)
}

fn person_name(rng: &mut StdRng, gender: &str, taken: &mut HashSet<String>) -> String {
    loop {
        let given = match gender {
            "male" => pick(rng, MALE_NAMES),
            _ => pick(rng, FEMALE_NAMES),
        };
        let name = format!("{}{}", pick(rng, SURNAMES), given);
        if taken.insert(name.clone()) {
            return name;
        }
    }
}

/// The whole chain as data, before anything is written.
fn plan(rng: &mut StdRng, cal: &Calendar, today: NaiveDate, now: DateTime<Utc>) -> Plan {
    // Who is a member of which tier, spread at random over the customers.
    let mut ranks: Vec<Option<usize>> = MEMBERS_PER_TIER
        .iter()
        .enumerate()
        .flat_map(|(rank, n)| std::iter::repeat_n(Some(rank), *n))
        .collect();
    ranks.resize(CUSTOMERS, None);
    for i in (1..ranks.len()).rev() {
        ranks.swap(i, rng.random_range(0..=i));
    }
    // Leads (never came in) and referred customers are chosen among the rest.
    let mut guests: Vec<usize> = (0..CUSTOMERS).filter(|i| ranks[*i].is_none()).collect();
    for i in (1..guests.len()).rev() {
        guests.swap(i, rng.random_range(0..=i));
    }
    let leads: HashSet<usize> = guests.iter().take(LEADS).copied().collect();
    // Referred customers: late in the list, so an earlier member can have introduced them.
    let mut referred: HashMap<usize, usize> = HashMap::new();
    let mut candidates: Vec<usize> = (CUSTOMERS / 4..CUSTOMERS)
        .filter(|i| !leads.contains(i))
        .collect();
    for i in (1..candidates.len()).rev() {
        candidates.swap(i, rng.random_range(0..=i));
    }
    for &c in &candidates {
        if referred.len() == REFERRED {
            break;
        }
        let members_before: Vec<usize> = (0..c).filter(|i| ranks[*i].is_some()).collect();
        if !members_before.is_empty() {
            referred.insert(c, *pick(rng, &members_before));
        }
    }

    let mut names = HashSet::new();
    let mut phones = HashSet::new();
    let mut customers = Vec::with_capacity(CUSTOMERS);
    let mut events = Vec::new();
    let mut visits: Vec<(usize, usize, DateTime<Utc>, i64)> = Vec::new();
    for (i, rank) in ranks.iter().copied().enumerate() {
        let gender = weighted(rng, &[("female", 85), ("male", 12), ("unknown", 3)]);
        let name = person_name(rng, gender, &mut names);
        let birthday = rng.random_bool(0.92).then(|| {
            let age = rng.random_range(22..56);
            let day_of_year = rng.random_range(0..365);
            NaiveDate::from_ymd_opt(today.year() - age, 1, 1)
                .map(|d| d + Duration::days(day_of_year))
                .unwrap_or(today)
        });
        let phone = loop {
            let p = format!("139{:08}", rng.random_range(0..100_000_000u32));
            if phones.insert(p.clone()) {
                break p;
            }
        };
        let store = weighted(rng, &[(0usize, 40), (1, 33), (2, 27)]);
        let carer = weighted(
            rng,
            &[
                (Carer::Consultant, 80),
                (Carer::Manager, 15),
                (Carer::Nobody, 5),
            ],
        );
        let referrer = referred.get(&i).copied();
        let source = if referrer.is_some() {
            "referral"
        } else {
            weighted(rng, SOURCES)
        };
        let tags: Vec<&'static str> = {
            let mut t: Vec<&'static str> = (0..rng.random_range(0..4))
                .map(|_| *pick(rng, TAGS))
                .collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        let note = rng.random_bool(0.3).then(|| *pick(rng, NOTES));

        // The year of visits: members came in for the first time 10-12 months ago, so many
        // of them hold points that expire within the coming month.
        let budget = rank.map_or(GUEST_BUDGET, |r| MEMBER_BUDGETS[r]);
        let first_day = if leads.contains(&i) {
            None
        } else if rank.is_some() {
            Some(rng.random_range(300..=358))
        } else {
            Some(rng.random_range(2..=358))
        };
        let first_at = first_day.map(|d| opening_hours(rng, cal, today - Duration::days(d)));
        let created_at = match first_at {
            // Registered at the desk just before the first treatment.
            Some(at) => at - Duration::minutes(30),
            None => {
                let days_ago = rng.random_range(1..60);
                opening_hours(rng, cal, today - Duration::days(days_ago))
            }
        };
        if let (Some(first_day), Some(first_at)) = (first_day, first_at) {
            let goal = rng.random_range(budget.goal_yuan.0..=budget.goal_yuan.1);
            let mut spent = 0;
            let mut at = first_at;
            for _ in 0..MAX_VISITS {
                if spent >= goal {
                    break;
                }
                let Some(items) = visit_items(rng, &budget, budget.ceiling_yuan - spent) else {
                    break;
                };
                let visit_store = if rng.random_bool(0.9) {
                    store
                } else {
                    rng.random_range(0..STORES.len())
                };
                let paid: i64 = items.iter().map(|(_, p)| p).sum();
                spent += paid;
                let visit = visits.len();
                visits.push((i, visit_store, at, fen(paid)));
                events.push(Event {
                    at,
                    kind: EventKind::Consume {
                        customer: i,
                        store: visit_store,
                        visit,
                        items: items
                            .into_iter()
                            .map(|(name, price)| Item {
                                name: name.to_string(),
                                quantity: 1,
                                amount_fen: fen(price),
                            })
                            .collect(),
                        paid_fen: fen(paid),
                    },
                });
                let day = rng.random_range(1..=first_day);
                at = opening_hours(rng, cal, today - Duration::days(day)).min(now);
            }
        }
        customers.push(CustomerPlan {
            name,
            gender,
            birthday,
            phone,
            store,
            carer,
            source,
            referrer,
            tier_rank: rank,
            tags,
            note,
            created_at,
        });
    }

    // Refunds: of entry-tier members' and guests' visits, whose tiers they cannot disturb, and
    // one partial refund of a gold member's add-on-sized amount (goals leave room for it).
    let mut refundable: Vec<usize> = (0..visits.len())
        .filter(|v| {
            let (c, _, at, _) = visits[*v];
            at < now - Duration::days(10) && customers[c].tier_rank.is_none_or(|r| r == 0)
        })
        .collect();
    for i in (1..refundable.len()).rev() {
        refundable.swap(i, rng.random_range(0..=i));
    }
    let gold = (0..visits.len()).find(|v| {
        let (c, _, at, paid) = visits[*v];
        customers[c].tier_rank == Some(1) && at < now - Duration::days(10) && paid >= fen(2_000)
    });
    for (n, v) in refundable
        .into_iter()
        .take(REFUNDS - 1)
        .chain(gold)
        .enumerate()
    {
        let (c, store, at, paid) = visits[v];
        let amount_fen = if customers[c].tier_rank == Some(1) {
            fen(1_000).min(paid)
        } else if n % 2 == 0 {
            paid
        } else {
            paid / 200 * 100
        };
        let reason = *pick(rng, REFUND_REASONS);
        events.push(Event {
            at: at + Duration::days(rng.random_range(1..8)),
            kind: EventKind::Refund {
                visit: v,
                store,
                amount_fen,
                reason,
            },
        });
    }

    // Daily check-ins of the last week by a few members, today's included.
    let members: Vec<usize> = (0..CUSTOMERS).filter(|i| ranks[*i].is_some()).collect();
    for _ in 0..CHECKIN_MEMBERS {
        let c = *pick(rng, &members);
        for back in 0..7 {
            if rng.random_bool(0.6) {
                let date = today - Duration::days(back);
                let at = if back == 0 {
                    now
                } else {
                    cal.start_of(date) + Duration::minutes(rng.random_range(480..1380))
                };
                events.push(Event {
                    at,
                    kind: EventKind::Checkin { customer: c, date },
                });
            }
        }
    }
    // Several check-ins drawn for one member on one day would be refused by the unique index.
    let mut seen = HashSet::new();
    events.retain(|e| match e.kind {
        EventKind::Checkin { customer, date } => seen.insert((customer, date)),
        _ => true,
    });
    events.sort_by_key(|e| e.at);
    Plan { customers, events }
}

fn api(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{} ({e:?})", e.describe())
}

struct StaffRow {
    username: String,
    role: Role,
    store: Option<String>,
    /// None when the account existed already (its password is left alone).
    password: Option<String>,
}

/// The demo stores, reusing any that already exist under the same name (a half-finished
/// earlier load, or an admin who created them by hand).
async fn ensure_stores(db: &DatabaseConnection) -> anyhow::Result<Vec<store::Model>> {
    let mut out = Vec::new();
    for spec in &STORES {
        let existing = store::Entity::find()
            .filter(store::Column::Name.eq(spec.name))
            .one(db)
            .await?;
        let model = match existing {
            Some(s) => s,
            None => {
                let now = Utc::now();
                store::ActiveModel {
                    name: Set(spec.name.to_string()),
                    city: Set(Some("上海".into())),
                    address: Set(Some(spec.address.into())),
                    phone: Set(Some(spec.phone.into())),
                    active: Set(true),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(db)
                .await?
            }
        };
        out.push(model);
    }
    Ok(out)
}

/// One account, or the existing one of that username.
async fn account(
    db: &DatabaseConnection,
    username: &str,
    display: &str,
    role: Role,
    store: Option<&store::Model>,
) -> anyhow::Result<(staff::Model, StaffRow)> {
    let username = Username::parse(username).map_err(api)?;
    let existing = staff::Entity::find()
        .filter(staff::Column::Username.eq(username.as_str()))
        .one(db)
        .await?;
    let (model, password) = match existing {
        Some(m) => (m, None),
        None => create_account(
            db,
            NewAccount {
                username: username.clone(),
                display_name: display.to_string(),
                role,
                store_id: store.map(|s| s.id),
                password: None,
            },
            None,
        )
        .await
        .map_err(api)?,
    };
    let row = StaffRow {
        username: username.as_str().to_string(),
        role,
        store: store.map(|s| s.name.clone()),
        password,
    };
    Ok((model, row))
}

/// Staff ids of one store: manager, consultant, front desk.
#[derive(Clone, Copy)]
struct Team {
    manager: i64,
    consultant: i64,
    desk: i64,
}

/// Loads the demo chain unless the database already holds customers; returns the report to
/// print (None when it left existing data alone).
pub async fn load(
    db: &DatabaseConnection,
    _cache: &Cache,
    settings: &Settings,
) -> anyhow::Result<Option<String>> {
    // Existing customers mean a real (or already demonstrated) chain: never mix demo data in.
    if customer::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    let started = Instant::now();
    let vault = Vault::from_settings(&settings.security, settings.wechat.sandbox())?;
    let cal = settings.loyalty.calendar();
    let today = cal.today();
    let now = Utc::now();
    // The plan decides who is a member; an operator's `auto_enrol` must not turn every paying
    // guest into one behind its back. Everything else follows the configured rules.
    let loyalty = LoyaltySettings {
        auto_enrol: false,
        ..settings.loyalty.clone()
    };
    let mut rng = StdRng::seed_from_u64(SEED ^ u64::from(today.num_days_from_ce().unsigned_abs()));
    let plan = plan(&mut rng, &cal, today, now);

    let stores = ensure_stores(db).await?;
    let mut staff_rows = Vec::new();
    let (_, row) = account(db, "demo-admin", "陈敏", Role::Admin, None).await?;
    staff_rows.push(row);
    let mut teams = Vec::new();
    for (spec, s) in STORES.iter().zip(&stores) {
        let mut ids = [0i64; 3];
        for (k, (suffix, role)) in [
            ("manager", Role::Manager),
            ("consultant", Role::Consultant),
            ("frontdesk", Role::FrontDesk),
        ]
        .into_iter()
        .enumerate()
        {
            let username = format!("{}-{suffix}", spec.slug);
            let (m, row) = account(db, &username, spec.people[k], role, Some(s)).await?;
            ids[k] = m.id;
            staff_rows.push(row);
        }
        teams.push(Team {
            manager: ids[0],
            consultant: ids[1],
            desk: ids[2],
        });
    }

    let customer_ids = insert_customers(db, &vault, &plan, &stores, &teams).await?;
    // Demo phones are made up, so the report may show a few: binding one in the sandbox
    // links the member's WeChat to that customer and shows a lived-in card.
    let contacts: HashMap<i64, (String, String)> = customer_ids
        .iter()
        .zip(&plan.customers)
        .map(|(id, c)| (*id, (c.name.clone(), c.phone.clone())))
        .collect();

    // The year, one transaction per event, in the order it happened.
    let mut consumption_ids: HashMap<usize, i64> = HashMap::new();
    let mut member_ids: HashMap<usize, i64> = HashMap::new();
    let mut day_seq: HashMap<(usize, NaiveDate), u32> = HashMap::new();
    for event in plan.events {
        match event.kind {
            EventKind::Consume {
                customer,
                store,
                visit,
                items,
                paid_fen,
            } => {
                let date = cal.date_of(event.at);
                let seq = day_seq.entry((store, date)).or_insert(0);
                *seq += 1;
                let input = NewConsumption {
                    customer_id: customer_ids[customer],
                    store_id: stores[store].id,
                    order_no: format!(
                        "{}{}{:03}",
                        STORES[store].order_prefix,
                        date.format("%Y%m%d"),
                        seq
                    ),
                    items,
                    paid_fen,
                    occurred_at: event.at,
                };
                let loyalty = loyalty.clone();
                let desk = teams[store].desk;
                let recorded = db::write(db, move |txn| {
                    Box::pin(async move { record(txn, &loyalty, input, Some(desk), today).await })
                })
                .await
                .map_err(api)?;
                consumption_ids.insert(visit, recorded.consumption.id);
            }
            EventKind::Refund {
                visit,
                store,
                amount_fen,
                reason,
            } => {
                let Some(&id) = consumption_ids.get(&visit) else {
                    continue;
                };
                let desk = teams[store].desk;
                db::write(db, move |txn| {
                    Box::pin(async move {
                        refund(
                            txn,
                            id,
                            amount_fen,
                            Some(reason.to_string()),
                            Some(desk),
                            today,
                        )
                        .await
                    })
                })
                .await
                .map_err(api)?;
            }
            EventKind::Checkin { customer, date } => {
                let member_id = match member_ids.get(&customer) {
                    Some(id) => *id,
                    None => {
                        let m = membership::member_of_customer(db, customer_ids[customer])
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("a demo member vanished"))?;
                        member_ids.insert(customer, m.id);
                        m.id
                    }
                };
                // What `POST /member/checkins` does, on the day it happened.
                let settings = loyalty.clone();
                db::write(db, move |txn| {
                    Box::pin(async move {
                        crate::loyalty::points::record_checkin(txn, &settings, member_id, date)
                            .await
                    })
                })
                .await
                .map_err(api)?;
            }
        }
    }

    insert_rewards(db).await?;
    insert_member_days(db, &stores, &cal, today, now).await?;
    audit::entry("demo.load")
        .by_staff_or_shell(None)
        .detail(serde_json::json!({"customers": CUSTOMERS, "seed": SEED}))
        .write(db)
        .await?;

    let report = report(db, &stores, &staff_rows, &contacts, today, started).await?;
    Ok(Some(report))
}

/// Customers, their tags and notes, and the memberships, in one transaction (nothing but the
/// demo reads them until it commits). Returns the customer ids in plan order.
async fn insert_customers(
    db: &DatabaseConnection,
    vault: &Vault,
    plan: &Plan,
    stores: &[store::Model],
    teams: &[Team],
) -> anyhow::Result<Vec<i64>> {
    // Encrypting needs the vault; everything else is plain values moved into the transaction.
    struct Row {
        model: customer::ActiveModel,
        referrer: Option<usize>,
        member: bool,
        created_at: DateTime<Utc>,
        joined_at: DateTime<Utc>,
        tags: Vec<&'static str>,
        note: Option<(&'static str, i64)>,
    }
    let mut rows = Vec::with_capacity(plan.customers.len());
    for c in &plan.customers {
        let phone = Phone::parse(&c.phone, "86")?;
        let team = teams[c.store];
        let consultant = match c.carer {
            Carer::Consultant => Some(team.consultant),
            Carer::Manager => Some(team.manager),
            Carer::Nobody => None,
        };
        rows.push(Row {
            model: customer::ActiveModel {
                name: Set(Some(c.name.clone())),
                phone_enc: Set(Some(vault.encrypt(phone.as_str()))),
                phone_hash: Set(Some(vault.phone_index(&phone))),
                phone_masked: Set(Some(phone.masked())),
                gender: Set(Some(c.gender.to_string())),
                birthday: Set(c.birthday),
                home_store_id: Set(Some(stores[c.store].id)),
                source: Set(c.source.to_string()),
                consultant_id: Set(consultant),
                referrer_id: Set(None),
                created_by_staff_id: Set(Some(team.desk)),
                created_at: Set(c.created_at),
                updated_at: Set(c.created_at),
                ..Default::default()
            },
            referrer: c.referrer,
            member: c.tier_rank.is_some(),
            created_at: c.created_at,
            // Joined at the desk on the first visit.
            joined_at: c.created_at + Duration::minutes(10),
            tags: c.tags.clone(),
            note: c.note.map(|n| (n, consultant.unwrap_or(team.desk))),
        });
    }
    let ids = db::write(db, move |txn| {
        Box::pin(async move {
            let mut ids: Vec<i64> = Vec::with_capacity(rows.len());
            for row in rows {
                let mut model = row.model;
                if let Some(r) = row.referrer {
                    model.referrer_id = Set(ids.get(r).copied());
                }
                let created_at = row.created_at;
                let c = model.insert(txn).await?;
                ids.push(c.id);
                if !row.tags.is_empty() {
                    customer_tag::Entity::insert_many(row.tags.iter().map(|t| {
                        customer_tag::ActiveModel {
                            customer_id: Set(c.id),
                            tag: Set((*t).to_string()),
                            created_at: Set(created_at),
                            ..Default::default()
                        }
                    }))
                    .exec_without_returning(txn)
                    .await?;
                }
                if let Some((body, staff_id)) = row.note {
                    customer_note::ActiveModel {
                        customer_id: Set(c.id),
                        staff_id: Set(staff_id),
                        body: Set(body.to_string()),
                        created_at: Set(created_at + Duration::hours(2)),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await?;
                }
                if row.member {
                    let (m, _) = membership::enrol(txn, c.id, via::DEMO).await?;
                    member::Entity::update_many()
                        .col_expr(member::Column::JoinedAt, Expr::value(row.joined_at))
                        .filter(member::Column::Id.eq(m.id))
                        .exec(txn)
                        .await?;
                }
            }
            Ok::<_, ApiError>(ids)
        })
    })
    .await
    .map_err(api)?;
    Ok(ids)
}

struct RewardSpec {
    name: &'static str,
    kind: &'static str,
    description: &'static str,
    points: i64,
    stock: i32,
    per_member: i32,
    /// Only for gold members and above.
    gold_only: bool,
    face_value_yuan: Option<i64>,
}

const REWARDS: [RewardSpec; 6] = [
    RewardSpec {
        name: "100元代金券",
        kind: "cash_voucher",
        description: "单笔消费满500元可用，全部门店通用",
        points: 500,
        stock: 200,
        per_member: 5,
        gold_only: false,
        face_value_yuan: Some(100),
    },
    RewardSpec {
        name: "300元代金券",
        kind: "cash_voucher",
        description: "单笔消费满2000元可用，全部门店通用",
        points: 1_500,
        stock: 100,
        per_member: 3,
        gold_only: false,
        face_value_yuan: Some(300),
    },
    RewardSpec {
        name: "小气泡清洁体验",
        kind: "service",
        description: "深层清洁一次，约45分钟",
        points: 800,
        stock: 120,
        per_member: 2,
        gold_only: false,
        face_value_yuan: None,
    },
    RewardSpec {
        name: "补水面膜礼盒",
        kind: "product",
        description: "医用修复补水面膜一盒（5片）",
        points: 1_200,
        stock: 80,
        per_member: 2,
        gold_only: false,
        face_value_yuan: None,
    },
    RewardSpec {
        name: "光子嫩肤单次体验",
        kind: "service",
        description: "全脸光子嫩肤一次，需提前预约",
        points: 3_000,
        stock: 40,
        per_member: 1,
        gold_only: false,
        face_value_yuan: None,
    },
    RewardSpec {
        name: "热玛吉眼周体验",
        kind: "service",
        description: "黄金及以上会员专享，眼周热玛吉一次",
        points: 12_000,
        stock: 20,
        per_member: 1,
        gold_only: true,
        face_value_yuan: None,
    },
];

async fn insert_rewards(db: &DatabaseConnection) -> anyhow::Result<()> {
    // By code, since tiers are data: a chain that renamed its tiers gets no minimum instead.
    let gold = tier::Entity::find()
        .filter(tier::Column::Code.eq("gold"))
        .one(db)
        .await?
        .map(|t| t.id);
    let now = Utc::now();
    let models = REWARDS.iter().map(|r| reward::ActiveModel {
        name: Set(r.name.to_string()),
        kind: Set(r.kind.to_string()),
        description: Set(r.description.to_string()),
        points_price: Set(r.points),
        stock_total: Set(r.stock),
        stock_left: Set(r.stock),
        per_member_limit: Set(Some(r.per_member)),
        min_tier_id: Set(if r.gold_only { gold } else { None }),
        starts_at: Set(None),
        ends_at: Set(None),
        voucher_valid_days: Set(90),
        face_value_fen: Set(r.face_value_yuan.map(fen)),
        store_id: Set(None),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    });
    reward::Entity::insert_many(models)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Slots of a demo member day: start (business time), minutes, service, places.
const DEMO_SLOTS: [(u32, i64, &str, i32); 4] = [
    (10, 90, "皮肤检测与护理方案", 8),
    (13, 90, "水光补水体验", 6),
    (15, 60, "光子嫩肤体验", 6),
    (16, 60, "会员专属咨询", 10),
];

/// One member day per store, ten days out: the first store's is open for everyone now, the
/// second's opens in two days (earlier for higher tiers), the third is still a draft.
async fn insert_member_days(
    db: &DatabaseConnection,
    stores: &[store::Model],
    cal: &Calendar,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let date = today + Duration::days(10);
    let day_start = cal.start_of(date);
    for (i, s) in stores.iter().enumerate() {
        let (status, opens_at) = match i {
            0 => ("published", now - Duration::hours(1)),
            1 => ("published", now + Duration::days(2)),
            _ => ("draft", now + Duration::days(5)),
        };
        let event = member_event::ActiveModel {
            store_id: Set(s.id),
            event_date: Set(date),
            title: Set(format!("{}会员日", s.name)),
            description: Set(
                "会员专享体验名额，当日到店消费享会员日积分倍数。名额有限，先到先得。".into(),
            ),
            opens_at: Set(opens_at),
            closes_at: Set(day_start - Duration::hours(6)),
            cancel_deadline: Set(day_start - Duration::hours(12)),
            min_tier_id: Set(None),
            points_bonus: Set(true),
            status: Set(status.into()),
            created_at: Set(now),
            updated_at: Set(now),
            published_at: Set((status == "published").then_some(now)),
            ..Default::default()
        }
        .insert(db)
        .await?;
        let slots = DEMO_SLOTS.iter().map(|(hour, minutes, service, places)| {
            let starts_at = day_start + Duration::hours(i64::from(*hour));
            event_slot::ActiveModel {
                event_id: Set(event.id),
                starts_at: Set(starts_at),
                ends_at: Set(starts_at + Duration::minutes(*minutes)),
                service: Set(service.to_string()),
                capacity: Set(*places),
                booked: Set(0),
                status: Set("open".into()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        });
        event_slot::Entity::insert_many(slots)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// What `memberhub demo` prints: stores, sign-ins, figures and where to go next.
async fn report(
    db: &DatabaseConnection,
    stores: &[store::Model],
    staff_rows: &[StaffRow],
    contacts: &HashMap<i64, (String, String)>,
    today: NaiveDate,
    started: Instant,
) -> anyhow::Result<String> {
    #[derive(FromQueryResult)]
    struct PerTier {
        tier_id: i64,
        n: i64,
    }
    #[derive(FromQueryResult)]
    struct Sum {
        points: Option<i64>,
        members: Option<i64>,
    }
    let customers = customer::Entity::find().count(db).await?;
    let tiers = tier::Entity::find()
        .order_by_asc(tier::Column::Rank)
        .all(db)
        .await?;
    let per_tier: HashMap<i64, i64> = member::Entity::find()
        .select_only()
        .column(member::Column::TierId)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .group_by(member::Column::TierId)
        .into_model::<PerTier>()
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.tier_id, r.n))
        .collect();
    let members: i64 = per_tier.values().sum();
    let outstanding = member::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(points_balance), 0) AS BIGINT)"),
            "points",
        )
        .column_as(Expr::cust("COUNT(*)"), "members")
        .into_model::<Sum>()
        .one(db)
        .await?;
    let expiring = points_lot::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(remaining), 0) AS BIGINT)"),
            "points",
        )
        .column_as(Expr::cust("COUNT(DISTINCT member_id)"), "members")
        .filter(points_lot::Column::Kind.eq("earn"))
        .filter(points_lot::Column::ExpiredAt.is_null())
        .filter(points_lot::Column::Remaining.gt(0))
        .filter(points_lot::Column::ExpiresOn.gte(today))
        .filter(points_lot::Column::ExpiresOn.lte(today + Duration::days(30)))
        .into_model::<Sum>()
        .one(db)
        .await?;
    let consumptions = consumption::Entity::find().count(db).await?;
    let refunds = consumption_refund::Entity::find().count(db).await?;
    let rewards = reward::Entity::find().count(db).await?;
    let events = member_event::Entity::find().count(db).await?;
    let slots = event_slot::Entity::find().count(db).await?;

    let mut out = String::new();
    let secs = started.elapsed().as_secs_f64();
    let _ = writeln!(
        out,
        "memberhub demo chain loaded in {secs:.1} s (business date {today})"
    );
    let _ = writeln!(out, "\nStores");
    for s in stores {
        let _ = writeln!(
            out,
            "  id {:<4} {}  {}  {}",
            s.id,
            s.name,
            s.city.as_deref().unwrap_or(""),
            s.address.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(
        out,
        "\nStaff sign-ins (passwords are shown only now; change them with POST /api/v1/staff/auth/password)"
    );
    let _ = writeln!(
        out,
        "  {:<20} {:<11} {:<8} password",
        "username", "role", "store"
    );
    for r in staff_rows {
        let store = r.store.as_deref().unwrap_or("(chain)");
        // Chinese characters take two columns in a terminal; `{:<8}` would count them as one.
        let width: usize = store
            .chars()
            .map(|c| if c.is_ascii() { 1 } else { 2 })
            .sum();
        let pad = 8usize.saturating_sub(width);
        let _ = writeln!(
            out,
            "  {:<20} {:<11} {store}{} {}",
            r.username,
            r.role.as_str(),
            " ".repeat(pad),
            r.password
                .as_deref()
                .unwrap_or("(existing account, password unchanged)")
        );
    }
    let tier_line: Vec<String> = tiers
        .iter()
        .map(|t| format!("{} {}", t.name, per_tier.get(&t.id).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(out, "\nFigures");
    let _ = writeln!(out, "  customers      {customers}");
    let _ = writeln!(out, "  members        {members} ({})", tier_line.join(", "));
    let _ = writeln!(
        out,
        "  consumptions   {consumptions} ({refunds} refunded in part or in full)"
    );
    let _ = writeln!(
        out,
        "  points         {} outstanding; {} expiring within 30 days for {} members",
        outstanding.as_ref().and_then(|s| s.points).unwrap_or(0),
        expiring.as_ref().and_then(|s| s.points).unwrap_or(0),
        expiring.as_ref().and_then(|s| s.members).unwrap_or(0)
    );
    let _ = writeln!(out, "  rewards        {rewards}");
    let _ = writeln!(
        out,
        "  member days    {events} events ten days out (one open now, one opening in two days, one draft), {slots} slots",
    );
    let _ = writeln!(out, "\nNext");
    let _ = writeln!(
        out,
        "  Staff: POST /api/v1/staff/auth/login {{\"username\",\"password\"}} (add \"session\":\"bearer\" for scripts)."
    );
    let _ = writeln!(
        out,
        "  Members: in sandbox mode they log in through the WeChat sandbox's control plane at\n  /__sandbox/wechat (README, \"Trying the member flow with the WeChat sandbox\"). Binding one\n  of these phones links that WeChat login to the demo member and its card:"
    );
    for t in &tiers {
        let sample = member::Entity::find()
            .filter(member::Column::TierId.eq(t.id))
            .order_by_asc(member::Column::Id)
            .one(db)
            .await?
            .and_then(|m| contacts.get(&m.customer_id));
        if let Some((name, phone)) = sample {
            let _ = writeln!(out, "    {}  {name}  {phone}", t.name);
        }
    }
    Ok(out.trim_end().to_string())
}
