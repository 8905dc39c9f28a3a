"""Member events (会员活动, seed 001 chapter 五): a unit's yearly plan, its events, invitations,
registrations with a waiting list, check-in with event points, and the post-event summary."""
