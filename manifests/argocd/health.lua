-- Argo CD health check of the apikeys.dev kinds: Deployment, ApiKey and FederatedCredential.
--
-- The source of resource.customizations.health.apikeys.dev_<Kind> in argocd-cm for all three
-- (argocd-cm-health.yaml beside it is generated from this file by scripts/render-manifests.ts).
-- It reads what the controller writes, the same conditions kstatus reads, in the same order:
--
--   no status, or status.observedGeneration below metadata.generation -> Progressing
--     (the controller has not looked at the latest spec yet)
--   Stalled True      -> Degraded, with the reason and message (nothing changes until a person acts:
--                        an expired key, a conflict, a key whose secret leaked (Compromised) ...)
--   Reconciling True  -> Progressing, with the reason and message (work under way)
--   Ready True        -> Healthy, with the message
--   Ready False       -> Degraded (a controller that writes no Stalled yet)
--   otherwise         -> Progressing
--
-- Lua 5.1 and only its base, string and table functions, as Argo CD's gopher-lua sandbox runs it.
local hs = { status = "Progressing", message = "Waiting for the apikey-operator controller to write a status" }

local function withReason(c)
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. (c.message or "")
  end
  return c.message or ""
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Being deleted"
  return hs
end

local status = obj.status
if status == nil then
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation)
  return hs
end

local byType = {}
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type ~= nil then
      byType[c.type] = c
    end
  end
end

local stalled, reconciling, ready = byType["Stalled"], byType["Reconciling"], byType["Ready"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = withReason(stalled)
elseif reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = withReason(reconciling)
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
elseif ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = withReason(ready)
elseif ready ~= nil then
  hs.message = withReason(ready)
end
return hs
