"""Douyin open platform videos (platforms.md §3.3): settings, content rules, rendering.

Douyin publishes videos only: the file is uploaded (in chunks when large) and then
``video/create`` is called with the text, where ``#话题`` tags become topics.
"""

from __future__ import annotations

from pydantic import Field

from kepubot.channels.base import Channel, HttpChannelSettings, Problem, Rendered
from kepubot.config import Secret
from kepubot.models import Post

# MP4 is what the upload documentation asks for; QuickTime (.mov, the same container family,
# what phones record) is accepted by the app and assumed to be accepted by the API [?].
VIDEO_TYPES = ("video/mp4", "video/quicktime")
# No source gives a length limit for the create text; 1000 characters is only a sanity bound
# so that a body pasted by mistake is caught at review rather than by the platform [?].
MAX_TEXT = 1000


class DouyinSettings(HttpChannelSettings):
    client_key: str = Field(min_length=1)
    client_secret: Secret
    open_id: str = Field(min_length=1)
    access_token: Secret
    refresh_token: Secret
    api_base: str = "https://open.douyin.com"
    # Chunked upload parts must be at least 5 MB; 20 MB is the recommended size [src].
    chunk_size_mb: int = Field(20, ge=5)


def _topic(tag: str) -> str:
    # A topic ends at the first space, and a tag written as "#科普" must not become "##科普".
    return "".join(tag.strip().lstrip("#＃").split())


class DouyinChannel(Channel):
    Settings = DouyinSettings
    settings: DouyinSettings

    def text(self, post: Post) -> str:
        topics = [t for t in (_topic(tag) for tag in post.tags) if t]
        return " ".join([post.title.strip(), *("#" + t for t in topics)]).strip()

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        video = post.video
        return Rendered(
            channel=self.name,
            kind="video",
            title=post.title,
            text=self.text(post),
            link=post.link,
            media=[video.path] if video else [],
            # The first frame is the cover unless publishing is told otherwise.
            extra={"cover_tsp": 0.0},
        )

    def check(self, post: Post) -> list[Problem]:
        post = post.for_channel(self.name)
        problems = super().check(post)
        video = post.video
        if video is None:
            problems.append(Problem("video", "required", detail="抖音只发布视频，请添加 --video"))
        elif video.mime not in VIDEO_TYPES:
            problems.append(
                Problem("video", "media_type", limit=", ".join(VIDEO_TYPES), actual=video.mime)
            )
        text = self.text(post)
        if len(text) > MAX_TEXT:
            problems.append(Problem("text", "too_long", limit=MAX_TEXT, actual=len(text)))
        return problems
