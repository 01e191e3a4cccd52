"""The service layer's refusals in Simplified Chinese, for the console.

The service layer words its errors in English for the command line and logs; the console
shows them to editors and reviewers in their language. Each pattern below matches one
message shape of ``kepubot.queue`` (tests pin the shapes); a message no pattern matches is
shown as it is, so nothing is ever hidden.
"""

from __future__ import annotations

import re

from kepubot.i18n import LABELS

_DOING = {"approved": "通过", "rejected": "退回", "submitted": "提交", "edited": "修改"}
_FIELDS = {"title": "标题", "body": "正文", "summary": "摘要", "tags": "标签"}


def _state(match: re.Match[str], name: str = "state") -> str:
    return LABELS.get(match.group(name), (match.group(name),))[0]  # the Chinese state name


_ACTIONS = {
    "retrying a delivery": "重新排队发布任务",
    "resolving a delivery": "人工确认发布任务",
    "reading reports": "查看报表",
    "writing a post": "写稿",
    "signing another user out": "让其他用户退出登录",
}
_WHAT = {"title": "标题", "body": "正文", "summary": "摘要", "link": "链接"}


# who an explicit time's refusal is about: a post, or the place a new post's time was given
_SLOT = r"^(?:post (?P<id>\d+) |(?P<place>.+?): )on (?P<ch>\S+): "


def _slot(match: re.Match[str]) -> str:
    if match["id"]:
        return f"稿件 {match['id']} 在 {match['ch']}："
    return f"{match['place']}：在 {match['ch']}，"


_RULES: list[tuple[re.Pattern[str], object]] = [
    # the config file itself (kepubot.config.read_toml), reported by the command line
    (
        re.compile(
            r"^config file (?P<p>.+) not found; run `kepubot init` here or pass --config FILE$"
        ),
        lambda m: (
            f"找不到配置文件 {m['p']}：请在此目录运行 `kepubot init`，或用 --config FILE 指定"
        ),
    ),
    (
        re.compile(r"^config file (?P<p>.+) cannot be read: (?P<why>.+)$"),
        lambda m: f"无法读取配置文件 {m['p']}：{m['why']}",
    ),
    (
        re.compile(r"^(?P<p>.+): not UTF-8 text; save the file as UTF-8$"),
        lambda m: f"{m['p']}：不是 UTF-8 文本，请以 UTF-8 编码保存",
    ),
    (
        re.compile(r"^(?P<p>.+): invalid TOML: (?P<why>.+)$"),
        lambda m: f"{m['p']}：TOML 格式错误：{m['why']}",
    ),
    (
        re.compile(
            r"^(?P<p>.+): (?P<field>\S+): unknown time zone '(?P<tz>[^']*)';"
            r" use an IANA name such as Asia/Shanghai$"
        ),
        lambda m: (
            f"{m['p']}：{m['field']}：未知时区「{m['tz']}」，请使用 IANA 时区名，例如 Asia/Shanghai"
        ),
    ),
    # the console's bulk work and uploads (kepubot.web.pages.bulk, kepubot.web.pages.media)
    (re.compile(r"^tick at least one post$"), lambda m: "请至少勾选一篇稿件"),
    (
        re.compile(r"^bulk action '(?P<a>[^']*)': choose one of .*$"),
        lambda m: f"批量操作「{m['a']}」不存在：请从下拉列表中选择",
    ),
    (
        re.compile(r"^post id '(?P<v>[^']*)': not a post number; reload the page$"),
        lambda m: f"稿件编号「{m['v']}」无效：请刷新页面",
    ),
    (re.compile(r"^file: choose an image to upload$"), lambda m: "请选择要上传的图片"),
    (
        re.compile(r"^give exactly one of --at TIME or --next-slot$"),
        lambda m: "请选择一个发布时间：指定时间，或各渠道的下一个空闲时段",
    ),
    (re.compile(r"^give at least one post id$"), lambda m: "请至少指定一篇稿件"),
    (
        re.compile(
            r"^collecting figures needs the manager or operator role; (?P<who>\S+) has neither$"
        ),
        lambda m: f"立即采集需要主管或运维角色；{m['who']} 没有",
    ),
    (
        re.compile(r"^(?P<what>\S+) (?P<name>.+): the upload is gone; upload it again$"),
        lambda m: f"{m['what']} {m['name']}：上传的文件已不在，请重新上传",
    ),
    # an image the body shows but the post does not attach (kepubot.bodyimages)
    (
        re.compile(
            r"^(?:(?P<ch>\S+): )?(?P<where>body|variants\.(?P<v>\S+)\.body) shows image"
            r" '(?P<src>[^']*)', which is not attached to the post: .*$"
        ),
        lambda m: (
            (f"{m['ch']}：" if m["ch"] else "")
            + (f"{m['v']} 版本的正文" if m["v"] else "正文")
            + f"引用的图片「{m['src']}」没有附上：请上传同名图片，或删去正文中的这处引用"
        ),
    ),
    # an explicit publishing time (kepubot.services.schedule.slot_refusals, timeutil): of a
    # post ("post 5 on ..."), or of a new one, named by where the time was given ("--at: on
    # ...", an import's file and row, the console's field)
    (
        re.compile(
            _SLOT + r"(?P<t>.+?) is in a blackout window ending at"
            r" (?P<end>\d\d:\d\d), pick another time$"
        ),
        lambda m: f"{_slot(m)}{m['t']} 处于禁发时段（至 {m['end']}），请换一个时间",
    ),
    (
        re.compile(
            _SLOT + r"another post is due at (?P<t>.+?), within"
            r" min_gap_minutes \((?P<gap>\d+)\), pick another time$"
        ),
        lambda m: f"{_slot(m)}另一篇稿件定于 {m['t']} 发布，间隔不足 {m['gap']} 分钟，请换一个时间",
    ),
    (
        re.compile(
            _SLOT + r"(?P<d>\d{4}-\d\d-\d\d) is a blackout date \(blackout_dates\),"
            r" pick another day$"
        ),
        lambda m: f"{_slot(m)}{m['d']} 是禁发日（blackout_dates），请换一天",
    ),
    (
        re.compile(r"^(?P<what>\S+) '(?P<t>[^']*)' is in the past \(now is (?P<now>.+?)\);.*$"),
        lambda m: f"{m['t']} 已经过去（现在是 {m['now']}），请选一个将来的时间",
    ),
    # size limits (kepubot.services.posts.size_problems) and uploaded media (kepubot.files.media)
    (
        re.compile(
            r"^(?P<place>.+?): the (?P<what>title|body|summary|link) has (?P<n>\d+) characters,"
            r" at most (?P<limit>\d+) are allowed; shorten it$"
        ),
        lambda m: (
            f"{m['place']}：{_WHAT[m['what']]}有 {m['n']} 个字符，最多 {m['limit']} 个；请删减"
        ),
    ),
    (
        re.compile(
            r"^(?P<place>.+?): (?P<n>\d+) tags, at most (?P<limit>\d+) are allowed;"
            r" keep the ones that matter most$"
        ),
        lambda m: f"{m['place']}：共 {m['n']} 个标签，最多 {m['limit']} 个；请只保留最重要的",
    ),
    (
        re.compile(
            r"^(?P<place>.+?) (?P<tag>'.*'|\".*\"): the tag has (?P<n>\d+) characters,"
            r" at most (?P<limit>\d+) are allowed; shorten it$"
        ),
        lambda m: f"{m['place']} {m['tag']}：标签有 {m['n']} 个字符，最多 {m['limit']} 个；请缩短",
    ),
    (
        re.compile(r"^(?P<where>.+?): not a PNG, JPEG, GIF, WebP or BMP image; pick another file$"),
        lambda m: f"{m['where']}：不是 PNG、JPEG、GIF、WebP 或 BMP 图片；请换一个文件",
    ),
    (
        re.compile(r"^(?P<where>.+?): not an MP4 or MOV video; pick another file$"),
        lambda m: f"{m['where']}：不是 MP4 或 MOV 视频；请换一个文件",
    ),
    (
        re.compile(
            r"^(?P<where>.+?): the image is (?P<size>\d+x\d+) pixels, more than (?P<mp>\d+)"
            r" megapixels; scale it down$"
        ),
        lambda m: f"{m['where']}：图片为 {m['size']} 像素，超过 {m['mp']} 百万像素；请缩小后再上传",
    ),
    (
        re.compile(
            r"^(?P<where>.+?): the image claims more than (?P<mp>\d+) megapixels; scale it down$"
        ),
        lambda m: f"{m['where']}：图片声明的尺寸超过 {m['mp']} 百万像素；请缩小后再上传",
    ),
    (
        re.compile(r"^(?P<where>.+?): the image has no pixels \((?P<size>\d+x\d+)\)$"),
        lambda m: f"{m['where']}：图片没有像素（{m['size']}）",
    ),
    (
        re.compile(
            r"^(?P<where>.+?): the image data is broken or cut short; export the image again$"
        ),
        lambda m: f"{m['where']}：图片数据损坏或不完整；请重新导出图片",
    ),
    (
        re.compile(
            r"^post (?P<id>\d+) was written by (?P<who>\S+); the author never reviews their own post$"
        ),
        lambda m: f"稿件 {m['id']} 由 {m['who']} 撰写：作者不能审核自己的稿件",
    ),
    (
        re.compile(
            r"^post (?P<id>\d+): (?P<who>\S+) already approved it at level (?P<level>.+);"
            r" one person approves at most one level of a post$"
        ),
        lambda m: (
            f"稿件 {m['id']}：{m['who']} 已在「{m['level']}」通过过它；同一人只能审核一篇稿件的一个级别"
        ),
    ),
    (
        re.compile(
            r"^post (?P<id>\d+): (?P<doing>\w+) needs the (?P<role>[\w-]+) role;"
            r" (?P<who>\S+) does not have it$"
        ),
        lambda m: (
            f"稿件 {m['id']}：审核需要审核员（reviewer）角色，{m['who']} 没有该角色"
            if m["role"] == "reviewer"
            else f"稿件 {m['id']}：审核这一级需要 {m['role']} 角色，{m['who']} 没有该角色"
        ),
    ),
    (
        re.compile(
            r"^post (?P<id>\d+) is (?P<state>\w+); only posts in review can be (?P<doing>\w+)$"
        ),
        lambda m: (
            f"稿件 {m['id']} 当前为「{_state(m)}」：只有审核中的稿件可以{_DOING.get(m['doing'], m['doing'])}"
        ),
    ),
    (
        re.compile(r"^post (?P<id>\d+): level (?P<level>.+) is already approved$"),
        lambda m: f"稿件 {m['id']}：「{m['level']}」已经通过",
    ),
    (
        re.compile(r"^post (?P<id>\d+): its content changed during review; review it again$"),
        lambda m: f"稿件 {m['id']}：审核期间内容有变动，请重新审核",
    ),
    # what the reviewer saw no longer holds (kepubot.services.posts._check_seen, issue 13 §1)
    (
        re.compile(
            r"^post (?P<id>\d+) changed since it was opened: its content hash (?P<old>\w+) is now"
            r" (?P<new>\w+)(?:, edited by (?P<who>\S+) at (?P<at>.+?))?; nothing was"
            r" (?P<doing>\w+) — read it again \(kepubot post show \d+\) and decide on what it"
            r" says now$"
        ),
        lambda m: (
            f"稿件 {m['id']} 在你打开之后被修改了（内容哈希 {m['old']} 现为 {m['new']}"
            + (f"，{m['who']} 于 {m['at']} 修改" if m["who"] else "")
            + f"）；本次没有{_DOING.get(m['doing'], m['doing'])}任何内容——请重新打开稿件，"
            "按现在的内容再作决定"
        ),
    ),
    (
        re.compile(
            r"^post (?P<id>\d+) is no longer at level (?P<old>.+?)"
            r" (?:but at (?P<new>.+?)|and is (?P<state>\w+))"
            r"(?: \((?P<was>.+?) was (?P<decision>approved|rejected) by (?P<who>\S+)"
            r" at (?P<at>.+?)\))?; nothing was (?P<doing>\w+) — open it again"
            r" \(kepubot post show \d+\)$"
        ),
        lambda m: (
            f"稿件 {m['id']} 已不在「{m['old']}」，"
            + (f"而在「{m['new']}」" if m["new"] else f"现为「{_state(m)}」")
            + (
                f"（「{m['was']}」已由 {m['who']} 于 {m['at']} "
                f"{_DOING.get(m['decision'], m['decision'])}）"
                if m["who"]
                else ""
            )
            + f"；本次没有{_DOING.get(m['doing'], m['doing'])}——请重新打开稿件"
        ),
    ),
    # warning words (kepubot.services.posts._accept_warnings, issue 13 §4)
    (
        re.compile(
            r"^post (?P<id>\d+) cannot be approved: warning word '(?P<word>.+?)' in (?P<field>\S+)"
            r" at line (?P<line>\d+), column (?P<col>\d+) is not accepted; .*$"
        ),
        lambda m: (
            f"稿件 {m['id']} 不能通过：提示词「{m['word']}」"
            f"（{_FIELDS.get(m['field'], m['field'])}第 {m['line']} 行第 {m['col']} 列）尚未接受；"
            "请勾选“接受提示词”并写明理由，或请作者修改"
        ),
    ),
    (
        re.compile(
            r"^post (?P<id>\d+): '(?P<word>.+)' is a blocked sensitive word; it cannot be"
            r" accepted — the author must change the text$"
        ),
        lambda m: f"稿件 {m['id']}：「{m['word']}」是禁用的敏感词，不能接受——请作者修改",
    ),
    (
        re.compile(
            r"^post (?P<id>\d+): '(?P<word>.+)' is not a warning word of this post"
            r" \(its warning words: (?P<words>.*)\)$"
        ),
        lambda m: f"稿件 {m['id']}：「{m['word']}」不是这篇稿件的提示词（提示词：{m['words']}）",
    ),
    (
        re.compile(r"^--reason: say why the warning words are acceptable; .*$"),
        lambda m: "请写明接受提示词的理由；理由会记入稿件的历史",
    ),
    (
        re.compile(r"^post (?P<id>\d+) cannot be (?P<doing>\w+): (?P<problems>.+)$"),
        lambda m: (
            f"稿件 {m['id']} 不能{_DOING.get(m['doing'], m['doing'])}：{translate_line(m['problems'])}"
        ),
    ),
    (
        re.compile(r"^post (?P<id>\d+) was written by (?P<who>\S+); only its author submits it$"),
        lambda m: f"稿件 {m['id']} 由 {m['who']} 撰写：只有作者本人可以提交",
    ),
    (
        re.compile(
            r"^post (?P<id>\d+) was written by (?P<who>\S+); only its author \(or an admin\) edits it$"
        ),
        lambda m: f"稿件 {m['id']} 由 {m['who']} 撰写：只有作者本人（或管理员）可以修改",
    ),
    (
        re.compile(
            r"^post (?P<id>\d+) was written by (?P<who>\S+); only its author or an operator cancels it$"
        ),
        lambda m: f"稿件 {m['id']} 由 {m['who']} 撰写：只有作者本人或运维人员可以撤销",
    ),
    (
        re.compile(
            r"^post (?P<id>\d+) was written by (?P<who>\S+); only its author, a reviewer or an"
            r" operator schedules it$"
        ),
        lambda m: f"稿件 {m['id']} 由 {m['who']} 撰写：只有作者、审核员或运维人员可以设定发布时间",
    ),
    (
        re.compile(r"^post (?P<id>\d+): submitting needs the editor role$"),
        lambda m: f"稿件 {m['id']}：提交需要编辑（editor）角色",
    ),
    (
        re.compile(
            r"^post (?P<id>\d+) is (?P<state>\w+); only draft or rejected posts can be submitted$"
        ),
        lambda m: f"稿件 {m['id']} 当前为「{_state(m)}」：只有草稿或已退回的稿件可以提交",
    ),
    (
        re.compile(r"^post (?P<id>\d+) is (?P<state>\w+); it can no longer be edited$"),
        lambda m: f"稿件 {m['id']} 当前为「{_state(m)}」：不能再修改",
    ),
    (
        re.compile(r"^post (?P<id>\d+) is already cancelled$"),
        lambda m: f"稿件 {m['id']} 已经撤销",
    ),
    (
        re.compile(r"^post (?P<id>\d+) does not exist; see `kepubot post list`$"),
        lambda m: f"稿件 {m['id']} 不存在",
    ),
    (
        re.compile(r"^delivery (?P<id>\d+) does not exist; see `kepubot delivery list`$"),
        lambda m: f"发布任务 {m['id']} 不存在",
    ),
    (
        re.compile(
            r"^delivery (?P<id>\d+) is (?P<state>\w+); only failed deliveries can be retried$"
        ),
        lambda m: f"发布任务 {m['id']} 当前为「{_state(m)}」：只有失败的任务可以重新排队",
    ),
    (
        re.compile(
            r"^delivery (?P<id>\d+) is (?P<state>\w+); only deliveries in needs_attention can be resolved$"
        ),
        lambda m: f"发布任务 {m['id']} 当前为「{_state(m)}」：只有「需人工处理」的任务可以人工确认",
    ),
    (
        re.compile(
            r"^(?P<action>.+) needs the (?P<need>.+) role; user '(?P<who>[^']+)' has: (?P<have>.*)$"
        ),
        lambda m: (
            f"{_ACTIONS.get(m['action'], m['action'])}需要 {m['need']} 角色；用户 {m['who']} 的角色：{m['have'] or '无'}"
        ),
    ),
    (
        re.compile(r"^--reason: say why the post is rejected, so the author can fix it$"),
        lambda m: "请填写退回原因，便于作者修改",
    ),
    (
        re.compile(
            r"^sensitive word '(?P<word>.+)' in (?P<field>\S+) at line (?P<line>\d+), column (?P<col>\d+)$"
        ),
        lambda m: (
            f"敏感词「{m['word']}」：{_FIELDS.get(m['field'], m['field'])}第 {m['line']} 行第 {m['col']} 列"
        ),
    ),
    (
        re.compile(
            r"^warning word '(?P<word>.+)' in (?P<field>\S+) at line (?P<line>\d+),"
            r" column (?P<col>\d+)$"
        ),
        lambda m: (
            f"提示词「{m['word']}」：{_FIELDS.get(m['field'], m['field'])}第 {m['line']} 行"
            f"第 {m['col']} 列（可以提交；审核人须写明理由后接受）"
        ),
    ),
    # 三校 and sources (kepubot/proofread.py, kepubot/sources.py; issue 13 §3, §5)
    # (after "post N cannot be approved: ", which the rule above translates)
    (
        re.compile(
            r"^proofreading finding not acknowledged:"
            r" (?P<finding>.+) \(pass --ack-proofreading after checking each one\)$"
        ),
        lambda m: f"校对提示未确认：{_finding_zh(m['finding'])}；请核对后逐条勾选",
    ),
    (
        re.compile(
            r"^the tag (?P<tag>.+?) needs at least one source from an authoritative domain or"
            r" a DOI; .*$"
        ),
        lambda m: (
            f"标签「{m['tag']}」需要至少一条来自权威机构网站（见 [review] authoritative_domains）"
            "或带 DOI 的参考资料"
        ),
    ),
    (
        re.compile(
            r"^(?P<where>.+?) (?P<value>'.*'|\".*\"): no '\|' between the title and the link; .*$"
        ),
        lambda m: (
            f"{m['where']} {m['value']}：标题和链接之间缺少「|」；请写成 标题|https://… 或 标题|doi:10.xxxx/…"
        ),
    ),
    (
        re.compile(r"^(?P<where>.+?): the source has no title; .*$"),
        lambda m: f"{m['where']}：参考资料缺少标题；请写成 标题|https://…",
    ),
    (
        re.compile(r"^(?P<where>.+?) (?P<value>'.*'|\".*\"): not a DOI; .*$"),
        lambda m: f"{m['where']} {m['value']}：不是有效的 DOI（形如 10.1038/s41586-020-2012-7）",
    ),
    (
        re.compile(r"^(?P<where>.+?) (?P<value>'.*'|\".*\"): not an http\(s\) URL; .*$"),
        lambda m: f"{m['where']} {m['value']}：不是 http(s) 网址；请填写完整地址",
    ),
    # kepubot.services.validate (issue 11 items 7, 8)
    (
        re.compile(
            r"^(?P<where>.+?): (?P<char>U\+[0-9A-F]{4,6} .+?) at character (?P<pos>\d+)"
            r"(?: \(line (?P<line>\d+), column (?P<col>\d+)\))? is not allowed; remove it"
            r" \(control and text-direction characters are refused\)$"
        ),
        lambda m: (
            f"{m['where']}：第 {m['pos']} 个字符"
            + (f"（第 {m['line']} 行第 {m['col']} 列）" if m["line"] else "")
            + f" {m['char']} 不允许，请删除（控制字符和文字方向字符一律拒绝）"
        ),
    ),
    (
        re.compile(
            r"^(?P<where>.+?): a link may not hold (?P<what>.+) \(character (?P<pos>\d+)\);"
            r" encode it or remove it; give a full address such as (?P<example>\S+)$"
        ),
        lambda m: (
            f"{m['where']}：链接不能包含 {m['what']}（第 {m['pos']} 个字符）；请编码或删除，"
            f"填写完整地址，例如 {m['example']}"
        ),
    ),
    # pausing and resuming a post (kepubot/services/postpause.py)
    (
        re.compile(
            r"^post (?P<id>\d+) was written by (?P<who>\S+); only its author, a reviewer or an"
            r" operator (?P<doing>pauses|resumes) it$"
        ),
        lambda m: (
            f"稿件 {m['id']} 由 {m['who']} 撰写：只有作者、审核员或运维人员可以"
            f"{'暂停' if m['doing'] == 'pauses' else '恢复'}它的发布"
        ),
    ),
    (
        re.compile(r"^post (?P<id>\d+) is cancelled; there is nothing to pause$"),
        lambda m: f"稿件 {m['id']} 已撤销：没有可暂停的发布",
    ),
    (
        re.compile(r"^post (?P<id>\d+) is already paused \(by (?P<who>.+)\)$"),
        lambda m: f"稿件 {m['id']} 已经暂停（由 {m['who']} 暂停）",
    ),
    (
        re.compile(r"^post (?P<id>\d+) has nothing left to send; there is nothing to pause$"),
        lambda m: f"稿件 {m['id']} 已没有待发送的内容：无需暂停",
    ),
    (
        re.compile(r"^post (?P<id>\d+) is not paused$"),
        lambda m: f"稿件 {m['id']} 没有暂停",
    ),
    # kepubot demo --dir (kepubot/demo.py prepare_workspace)
    (
        re.compile(r"^demo --dir (?P<d>.+): not a folder; give a new or empty folder$"),
        lambda m: f"demo --dir {m['d']}：不是文件夹，请给一个新的或空的文件夹",
    ),
    (
        re.compile(
            r"^demo --dir (?P<d>.+): the folder is not empty and is no demo workspace"
            r" \(no (?P<marker>\S+) file\); nothing was deleted; give a new or empty folder$"
        ),
        lambda m: (
            f"demo --dir {m['d']}：文件夹不是空的，也不是演示的工作目录（没有 {m['marker']}"
            " 文件）；没有删除任何东西，请给一个新的或空的文件夹"
        ),
    ),
    (
        re.compile(
            r"^demo --dir (?P<d>.+): the previous demo's database is in use \(a console or"
            r" daemon is running on it\); stop it first or give another folder$"
        ),
        lambda m: (
            f"demo --dir {m['d']}：上一次演示的数据库正在使用（有控制台或发布程序在运行）；"
            "请先停止它，或换一个文件夹"
        ),
    ),
]


_FINDING = re.compile(
    r"^(?P<field>\S+) (?P<line>\d+):(?P<col>\d+): (?P<kind>\w+) (?P<text>'.*?'|\".*?\")"
    r"(?: \((?P<note>.*?)\))?(?:; suggested: (?P<suggestion>'.*'|\".*\"))?$"
)


def _finding_zh(text: str) -> str:
    """A proofreading finding as ``Finding.describe('en')`` wrote it, in Chinese."""
    from kepubot.proofread import _FIELD_ZH, _KIND_ZH

    match = _FINDING.match(text)
    if not match or match["kind"] not in _KIND_ZH:
        return text
    field = _FIELD_ZH.get(match["field"], match["field"])
    out = f"{field} {match['line']}:{match['col']}：{_KIND_ZH[match['kind']]}「{match['text'][1:-1]}」"
    if match["suggestion"]:
        out += f"，建议改为「{match['suggestion'][1:-1]}」"
    return out


def translate_line(line: str) -> str:
    # a list of problems ("a; b; c") is translated item by item
    for pattern, render in _RULES:
        match = pattern.match(line)
        if match:
            return render(match)  # type: ignore[operator, no-any-return]
    if "; " in line:
        parts = line.split("; ")
        translated = [translate_line(p) for p in parts]
        if translated != parts:
            return "；".join(translated)
    return line


# command-line options named in channel problems, as the console's form calls them
_OPTIONS = {
    "--cover 或 --image": "封面或图片",
    "--video": "视频",
    "--cover": "封面",
    "--image": "图片",
}


def translate(message: str, language: str) -> str:
    """``message`` for a reader of ``language`` (zh: translated where a rule knows it)."""
    if language == "en":
        return message
    text = "\n".join(translate_line(line) for line in message.splitlines())
    for option, field in _OPTIONS.items():
        text = text.replace(f"请添加 {option}", f"请添加{field}")
    return text
